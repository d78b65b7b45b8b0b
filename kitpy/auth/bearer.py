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
is ignored (the parser then reports a missing token).  The hooks never raise:
judging the token is the parser's job.  They are typed structurally, so this
module imports neither aiohttp nor grpc.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Protocol

from kitpy.auth.context import TOKEN
from kitpy.context import Context

__all__ = [
    "bearer_token",
    "context_to_grpc",
    "context_to_http",
    "grpc_to_context",
    "http_to_context",
]


class HasHeaders(Protocol):
    """Anything with request headers, such as ``aiohttp.web.Request``."""

    @property
    def headers(self) -> Mapping[str, str]: ...


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
    """HTTP server before hook: put the request's bearer token in the Context."""
    token = bearer_token(request.headers.get("Authorization"))
    return ctx if token is None else ctx.with_value(TOKEN, token)


def context_to_http(ctx: Context, headers: MutableMapping[str, str]) -> Context:
    """HTTP client before hook: send the Context's token as ``Authorization: Bearer``."""
    token = ctx.get(TOKEN)
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    return ctx


def grpc_to_context(ctx: Context, metadata: Mapping[str, str | bytes]) -> Context:
    """gRPC server before hook: put the ``authorization`` metadata's bearer token in the Context."""
    token = bearer_token(metadata.get("authorization"))
    return ctx if token is None else ctx.with_value(TOKEN, token)


def context_to_grpc(ctx: Context, metadata: MutableMapping[str, str | bytes]) -> Context:
    """gRPC client before hook: send the Context's token as ``authorization`` metadata."""
    token = ctx.get(TOKEN)
    if token is not None:
        metadata["authorization"] = "Bearer " + token
    return ctx
