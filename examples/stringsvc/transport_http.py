"""stringsvc over HTTP/JSON: the server routes and a client ``Endpoints`` set.

Routes::

    POST /uppercase  {"s": "hello"}  ->  200 {"v": "HELLO"}
    POST /count      {"s": "hi"}     ->  200 {"v": 2}
    GET  /tokens?s=go+kit            ->  200 text/event-stream: one event per word,
                                         data: {"v":"GO"}, then data: {"v":"KIT"}
    GET  /healthz                    ->  200 {"status": "SERVING"} (503 NOT_SERVING while stopping)

Anything else gets the same JSON errors: 404 NOT_FOUND for an unknown path, 405
(code UNIMPLEMENTED, with ``Allow``) for a known path with another method.

Errors use kitpy's JSON error body, e.g. an empty string::

    400 {"error": {"code": "INVALID_ARGUMENT", "message": "empty string"}}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Unpack

import aiohttp
from aiohttp import web

from kitpy import Context, GenericMiddleware, InvalidArgument
from kitpy.endpoint.stream import StreamMiddleware
from kitpy.lifecycle.http import Health
from kitpy.transport.http import (
    Client,
    ClientBefore,
    OutgoingRequest,
    Server,
    ServerOptions,
    SseClient,
    SseServer,
    add_fallback,
    add_routes,
    decode_json,
    decode_json_event,
    decode_json_response,
    encode_json,
    encode_json_request,
)

from .endpoints import (
    CountRequest,
    CountResponse,
    Endpoints,
    TokensRequest,
    TokensResponse,
    UppercaseRequest,
    UppercaseResponse,
)

__all__ = ["make_http_app", "make_http_client"]


async def decode_tokens_query(ctx: Context, request: web.Request) -> TokensRequest:
    """``GET /tokens?s=...``: the string is the query parameter ``s`` (no body for SSE)."""
    s = request.query.get("s")
    if s is None:
        raise InvalidArgument("the query parameter s is required: GET /tokens?s=some+words")
    return TokensRequest(s=s)


def encode_tokens_query(ctx: Context, out: OutgoingRequest, request: TokensRequest) -> None:
    out.url = out.url.with_query(s=request.s)


def make_http_app(
    endpoints: Endpoints,
    *,
    health: Health | None = None,
    **options: Unpack[ServerOptions],
) -> web.Application:
    """An aiohttp application serving ``endpoints`` (and ``/healthz``).

    ``health`` answers ``/healthz``; the lifecycle turns it to 503 when shutdown
    starts (see ``__main__``).  ``options`` go to every route's Server (e.g.
    ``before`` hooks for tracing, an ``error_handler`` logging the requests that
    do not decode, the JWT check run before a body is read as ``authenticate``,
    the concurrency limit as ``admission``).
    """
    app = web.Application()
    add_routes(
        app,
        {
            "POST /uppercase": Server(
                endpoints.uppercase_endpoint, decode_json(UppercaseRequest), encode_json, **options
            ),
            "POST /count": Server(
                endpoints.count_endpoint, decode_json(CountRequest), encode_json, **options
            ),
            "GET /tokens": SseServer(endpoints.tokens_endpoint, decode_tokens_query, **options),
            "GET /healthz": (health or Health()).handle,
        },
    )
    # JSON 404/405 for requests no route matches; routes added later (``/metrics`` in
    # ``__main__``) still win: the fallback puts itself last when the app starts.
    add_fallback(app)
    return app


def make_http_client(
    session: aiohttp.ClientSession,
    base_url: str,
    *,
    before: Sequence[ClientBefore] = (),
    middleware: GenericMiddleware | None = None,
    stream_middleware: StreamMiddleware | None = None,
) -> Endpoints:
    """A ``StringService`` that calls a stringsvc HTTP server at ``base_url``.

    ``before`` hooks go to every Client (e.g. trace injection, a bearer
    token); each unary client endpoint is wrapped in ``middleware`` if given
    (e.g. a breaker and retries), ``tokens`` (server-sent events) in
    ``stream_middleware``.  The session belongs to the caller.

    Example::

        async with aiohttp.ClientSession() as session:
            svc = make_http_client(session, "http://127.0.0.1:8080")
            await svc.uppercase(Context().with_timeout(1.0), "hello")    # "HELLO"
    """
    base = base_url.rstrip("/")
    uppercase = Client(
        session,
        "POST",
        f"{base}/uppercase",
        encode_json_request,
        decode_json_response(UppercaseResponse),
        before=before,
    )
    count = Client(
        session,
        "POST",
        f"{base}/count",
        encode_json_request,
        decode_json_response(CountResponse),
        before=before,
    )
    tokens = SseClient(
        session,
        "GET",
        f"{base}/tokens",
        encode_tokens_query,
        decode_json_event(TokensResponse),
        before=before,
    )
    endpoints = Endpoints(
        uppercase_endpoint=uppercase, count_endpoint=count, tokens_endpoint=tokens
    )
    return endpoints.wrap(middleware, stream_middleware=stream_middleware)
