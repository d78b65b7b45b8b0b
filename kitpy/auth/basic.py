"""HTTP Basic authentication: a server before hook and a middleware.

:func:`basic_http_to_context` copies the credentials of an
``Authorization: Basic ...`` header into the Context; :func:`basic_auth`
checks them against one username and password and puts the username in the
Context under :data:`BASIC_USER`.  A missing or wrong credential is a 401 whose
``WWW-Authenticate: Basic realm="..."`` header the HTTP transport sends, so a
browser or ``curl --anyauth`` knows to ask.

The comparison is constant-time: both sides are hashed to fixed-length SHA-256
digests, then compared with :func:`hmac.compare_digest`, and the username and
the password are always both compared, so neither the length nor which part was
wrong leaks through timing.  The error message is the same for every failure.

Example::

    server = Server(endpoint, ..., before=[basic_http_to_context])
    endpoint = basic_auth("admin", "s3cret", realm="stringsvc")(endpoint)
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
from base64 import b64decode
from collections.abc import Awaitable
from types import MappingProxyType

from kitpy.auth.bearer import HasHeaders, authorization_header
from kitpy.context import Context, Key
from kitpy.endpoint import Endpoint, GenericMiddleware, Req, Resp, keep_name
from kitpy.errors import Unauthenticated

__all__ = ["BASIC_CREDENTIALS", "BASIC_USER", "basic_auth", "basic_http_to_context"]

BASIC_CREDENTIALS: Key[str] = Key("auth.basic_credentials")
"""The base64 part of an ``Authorization: Basic`` header, set by :func:`basic_http_to_context`."""

BASIC_USER: Key[str] = Key("auth.basic_user")
"""The authenticated username, set by :func:`basic_auth`."""


def basic_http_to_context(ctx: Context, request: HasHeaders) -> Context:
    """HTTP server before hook: put ``Authorization: Basic`` credentials in the Context.

    The scheme is matched case-insensitively; any other header is ignored.  Two
    ``Authorization`` headers raise :class:`~kitpy.auth.errors.DuplicateAuthorization`.
    """
    value = authorization_header(request)
    if value is None:
        return ctx
    scheme, _, credentials = value.strip().partition(" ")
    if scheme.lower() != "basic" or not credentials.strip():
        return ctx
    return ctx.with_value(BASIC_CREDENTIALS, credentials.strip())


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _decode(credentials: str) -> tuple[bytes, bytes] | None:
    try:
        raw = b64decode(credentials.encode("ascii"), validate=True)
    except (ValueError, binascii.Error):  # UnicodeEncodeError is a ValueError
        return None
    user, sep, password = raw.partition(b":")
    return (user, password) if sep else None


def basic_auth(username: str, password: str, *, realm: str = "kitpy") -> GenericMiddleware:
    """Middleware that admits only requests carrying ``username``/``password`` (UTF-8).

    ``realm`` is shown by browsers; it must not contain quotes, backslashes or
    control characters.  On success the username is in the Context under
    :data:`BASIC_USER`; on failure the endpoint is not called and an
    :class:`~kitpy.errors.Unauthenticated` with ``WWW-Authenticate`` is raised.
    """
    if not username or ":" in username:
        raise ValueError("username must be non-empty and contain no ':'")
    if any(c in realm for c in '"\\') or not realm.isprintable():
        raise ValueError("realm must be printable and contain no quotes or backslashes")
    want_user = _digest(username.encode("utf-8"))
    want_password = _digest(password.encode("utf-8"))
    challenge = MappingProxyType({"WWW-Authenticate": f'Basic realm="{realm}", charset="UTF-8"'})

    def reject() -> Unauthenticated:
        return Unauthenticated("invalid or missing credentials", headers=challenge)

    def middleware(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        def endpoint(ctx: Context, request: Req) -> Awaitable[Resp]:
            credentials = ctx.get(BASIC_CREDENTIALS)
            if credentials is None:
                raise reject()
            pair = _decode(credentials)
            if pair is None:
                raise reject()
            user_ok = hmac.compare_digest(_digest(pair[0]), want_user)
            password_ok = hmac.compare_digest(_digest(pair[1]), want_password)
            if not (user_ok & password_ok):
                raise reject()
            return next(ctx.with_value(BASIC_USER, username), request)

        return keep_name(endpoint, next)

    return middleware
