"""svcname over HTTP/JSON: the server routes and a client ``Endpoints`` set.

Routes::

    POST /hello  {"name": "Ada"}  ->  200 {"message": "Hello, Ada!"}
    GET  /healthz                 ->  200 {"status": "SERVING"} (503 NOT_SERVING while stopping)
    GET  /metrics                 ->  Prometheus text format (added in ``__main__``)

Anything else gets the same JSON errors: 404 NOT_FOUND for an unknown path, 405
(code UNIMPLEMENTED, with ``Allow``) for a known path with another method.

Errors use kitpy's JSON error body, e.g. an empty name::

    400 {"error": {"code": "INVALID_ARGUMENT", "message": "name must not be empty"}}
"""

from __future__ import annotations

from typing import Unpack

import aiohttp
from aiohttp import web
from kitpy import Endpoint, GenericMiddleware
from kitpy.lifecycle.http import Health
from kitpy.transport.http import (
    Client,
    Server,
    ServerOptions,
    add_fallback,
    add_routes,
    decode_json,
    decode_json_response,
    encode_json,
    encode_json_request,
)

from .endpoints import Endpoints, HelloRequest, HelloResponse

__all__ = ["make_http_app", "make_http_client"]


def make_http_app(
    endpoints: Endpoints,
    *,
    health: Health | None = None,
    **options: Unpack[ServerOptions],
) -> web.Application:
    """An aiohttp application serving ``endpoints`` (and ``/healthz``, answered by ``health``).

    ``options`` go to every route's Server (``before``, ``error_handler``,
    ``finalizer``, ``admission``, ...).
    """
    app = web.Application()
    add_routes(
        app,
        {
            "POST /hello": Server(
                endpoints.hello_endpoint, decode_json(HelloRequest), encode_json, **options
            ),
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
    middleware: GenericMiddleware | None = None,
) -> Endpoints:
    """A ``Service`` calling the svcname HTTP server at ``base_url``.

    Example::

        async with aiohttp.ClientSession() as session:
            svc = make_http_client(session, "http://127.0.0.1:8080")
            await svc.hello(Context().with_timeout(1.0), "Ada")      # "Hello, Ada!"
    """
    hello: Endpoint[HelloRequest, HelloResponse] = Client(
        session,
        "POST",
        f"{base_url.rstrip('/')}/hello",
        encode_json_request,
        decode_json_response(HelloResponse),
    )
    endpoints = Endpoints(hello_endpoint=hello)
    return endpoints if middleware is None else endpoints.wrap(middleware)
