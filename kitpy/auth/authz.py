"""Authorisation: require scopes or roles from verified claims -> PermissionDenied.

These middlewares sit *inside* the JWT parser (which put the claims in the
Context) and check them before the endpoint runs::

    endpoint = chain(jwt_parser(key, algorithms=["ES256"]), require_scopes("strings:write"))(ep)

A claim may be a space-separated string (OAuth 2 ``scope``) or a list of strings
(``scp``, ``roles``).  Missing claims in the Context mean the parser did not run,
which fails closed as UNAUTHENTICATED; claims without the required entries are
PERMISSION_DENIED (HTTP 403) with an RFC 6750 ``insufficient_scope`` header.
The message names what the endpoint requires, never what the token holds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from types import MappingProxyType
from typing import Any

from kitpy.auth.context import CLAIMS
from kitpy.context import Context, Key
from kitpy.endpoint import Endpoint, GenericMiddleware, Req, Resp, keep_name
from kitpy.errors import PermissionDenied, Unauthenticated

__all__ = ["claim_values", "require_claim_values", "require_roles", "require_scopes"]

_INSUFFICIENT = MappingProxyType({"WWW-Authenticate": 'Bearer error="insufficient_scope"'})


def claim_values(claims: dict[str, Any], claim: str) -> frozenset[str]:
    """The set of strings in ``claims[claim]``: split if a string, the strings if a list.

    Example::

        assert claim_values({"scope": "a b"}, "scope") == {"a", "b"}
    """
    value = claims.get(claim)
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list | tuple):
        return frozenset(v for v in value if isinstance(v, str))
    return frozenset()


def require_claim_values(
    claim: str,
    required: Iterable[str],
    *,
    what: str = "value",
    key: Key[dict[str, Any]] = CLAIMS,
) -> GenericMiddleware:
    """Middleware that lets a call through only if ``claims[claim]`` holds every ``required`` value.

    ``what`` names the values in the error message ("scope", "role").
    """
    needed = frozenset(required)
    if not needed:
        raise ValueError("require at least one value")
    message = f"requires {what}: {' '.join(sorted(needed))}"

    def middleware(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        def endpoint(ctx: Context, request: Req) -> Awaitable[Resp]:
            claims = ctx.get(key)
            if claims is None:
                raise Unauthenticated("not authenticated")
            if not needed <= claim_values(claims, claim):
                raise PermissionDenied(message, headers=_INSUFFICIENT)
            return next(ctx, request)

        return keep_name(endpoint, next)

    return middleware


def require_scopes(
    *scopes: str, claim: str = "scope", key: Key[dict[str, Any]] = CLAIMS
) -> GenericMiddleware:
    """Middleware requiring every one of ``scopes`` in the ``scope`` claim (or ``claim``).

    Example::

        guarded = require_scopes("strings:read")(endpoint)
    """
    return require_claim_values(claim, scopes, what="scope", key=key)


def require_roles(
    *roles: str, claim: str = "roles", key: Key[dict[str, Any]] = CLAIMS
) -> GenericMiddleware:
    """Middleware requiring every one of ``roles`` in the ``roles`` claim (or ``claim``)."""
    return require_claim_values(claim, roles, what="role", key=key)
