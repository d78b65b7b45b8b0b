"""Transport hooks that move a bearer token between the wire and the Context.

They are plain functions with the agreed hook signatures, so they go straight
into a transport's ``before`` list::

    http_server = Server(endpoint, ..., before=[http_to_context])     # kitpy.transport.http
    grpc_client = Client(channel, ..., before=[context_to_grpc])      # kitpy.transport.grpc

* :func:`http_to_context` -- HTTP server: ``Authorization: Bearer <token>`` -> :data:`TOKEN`.
* :func:`context_to_http` -- HTTP client: :data:`TOKEN` -> ``Authorization`` header.
* :func:`grpc_to_context` -- gRPC server: ``authorization`` metadata -> :data:`TOKEN`.
* :func:`context_to_grpc` -- gRPC client: :data:`TOKEN` -> ``authorization`` metadata.

The scheme is matched case-insensitively; any other scheme, or an empty token,
is ignored (the parser then reports a missing token).  Judging the token is the
parser's job; the server hooks raise only for a request that carries **more than
one** ``Authorization`` header (or ``authorization`` metadata entry):
:class:`~kitpy.auth.errors.DuplicateAuthorization` (UNAUTHENTICATED), answered
through the Server's error path.  aiohttp's ``headers.get`` reads the first and
gRPC metadata keeps the last, so two credentials are refused, not guessed at.
The hooks are typed structurally, so this module imports neither aiohttp nor grpc.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, MutableMapping
from typing import Protocol

from kitpy.auth.context import TOKEN
from kitpy.auth.errors import DuplicateAuthorization
from kitpy.context import Context, Key

__all__ = [
    "authorization_header",
    "bearer_token",
    "context_to_grpc",
    "context_to_http",
    "context_to_message",
    "grpc_to_context",
    "http_to_context",
    "message_to_context",
]


class MultiHeaders(Protocol):
    """Headers that may repeat, such as aiohttp's ``CIMultiDictProxy``."""

    def getall(self, key: str, default: tuple[()], /) -> list[str] | tuple[()]: ...


class HasHeaders(Protocol):
    """Anything with request headers, such as ``aiohttp.web.Request``."""

    @property
    def headers(self) -> MultiHeaders: ...


_AUTHORIZATION = "authorization"  # gRPC metadata keys are lower case


def authorization_header(request: HasHeaders) -> str | None:
    """The request's one ``Authorization`` header, or None; more than one raises.

    Raises :class:`~kitpy.auth.errors.DuplicateAuthorization` (UNAUTHENTICATED)
    when the header repeats.  For hooks reading other schemes (API keys, ...).

    Example::

        value = authorization_header(request)   # "Bearer abc", or None
    """
    values = request.headers.getall("Authorization", ())
    if not values:
        return None
    if len(values) > 1:
        raise DuplicateAuthorization()
    return values[0]


def bearer_token(authorization: str | bytes | None) -> str | None:
    """The token in an ``Authorization`` value ``"Bearer <token>"``, else None.

    Example::

        assert bearer_token("bearer abc") == "abc"
        assert bearer_token("Basic abc") is None
    """
    if not isinstance(authorization, str):
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


def http_to_context(ctx: Context, request: HasHeaders) -> Context:
    """HTTP server before hook: put the request's bearer token in the Context.

    Two ``Authorization`` headers raise :class:`~kitpy.auth.errors.DuplicateAuthorization`.
    """
    token = bearer_token(authorization_header(request))
    return ctx if token is None else ctx.with_value(TOKEN, token)


def context_to_http(ctx: Context, headers: MutableMapping[str, str]) -> Context:
    """HTTP client before hook: send the Context's token as ``Authorization: Bearer``."""
    token = ctx.get(TOKEN)
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    return ctx


def grpc_to_context(ctx: Context, metadata: Mapping[str, str | bytes]) -> Context:
    """gRPC server before hook: put the ``authorization`` metadata's bearer token in the Context.

    Two ``authorization`` entries raise :class:`~kitpy.auth.errors.DuplicateAuthorization`.
    """
    value = metadata.get(_AUTHORIZATION)
    if value is None:
        return ctx
    if _repeated_authorization(ctx):
        raise DuplicateAuthorization()
    token = bearer_token(value)
    return ctx if token is None else ctx.with_value(TOKEN, token)


def _repeated_authorization(ctx: Context) -> bool:
    """Whether the call's raw metadata has ``authorization`` more than once.

    ``metadata`` keeps only the last of repeated keys; the gRPC Server keeps the
    pairs as received under ``INVOCATION_PAIRS``.
    """
    pairs = ctx.get(_invocation_pairs())
    if pairs is None:  # called without a gRPC Server: the mapping is all there is
        return False
    seen = False
    for key, _ in pairs:
        if key == _AUTHORIZATION:
            if seen:
                return True
            seen = True
    return False


@functools.cache
def _invocation_pairs() -> Key[tuple[tuple[str, str | bytes], ...]]:
    """The gRPC Server's ``INVOCATION_PAIRS`` key, imported on first use.

    This module must not import grpc (an HTTP-only service has no use for it),
    and only a gRPC Server runs :func:`grpc_to_context`.  Cached: an import
    statement run per call cost ~8 k instructions, as much as the rest of the hook.
    """
    from kitpy.transport.grpc.metadata import INVOCATION_PAIRS

    return INVOCATION_PAIRS


def context_to_grpc(ctx: Context, metadata: MutableMapping[str, str | bytes]) -> Context:
    """gRPC client before hook: send the Context's token as ``authorization`` metadata."""
    token = ctx.get(TOKEN)
    if token is not None:
        metadata["authorization"] = "Bearer " + token
    return ctx


def message_to_context(ctx: Context, headers: Mapping[str, str]) -> Context:
    """Message server before hook (NATS, AMQP): the ``Authorization`` header's bearer token.

    Example::

        server = nats.Server(endpoint, decode, encode, before=[message_to_context],
                             authenticate=parser.authenticate)
    """
    token = bearer_token(headers.get("Authorization"))
    return ctx if token is None else ctx.with_value(TOKEN, token)


def context_to_message(ctx: Context, headers: MutableMapping[str, str]) -> Context:
    """Message client before hook: send the Context's token as an ``Authorization`` header."""
    token = ctx.get(TOKEN)
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    return ctx
