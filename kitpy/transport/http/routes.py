"""Mount several handlers on an aiohttp application in one call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

__all__ = ["Handler", "add_routes"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
"""An aiohttp handler; a :class:`~kitpy.transport.http.Server` is one."""


def add_routes(app: web.Application, routes: Mapping[str, Handler]) -> list[web.AbstractRoute]:
    """Add ``{"METHOD /path": handler}`` routes to ``app``; return the aiohttp routes.

    Paths use aiohttp's syntax, so ``"GET /users/{id}"`` works, and the Server
    puts the template in the Context under ``ROUTE``.  A ``GET`` route also
    answers ``HEAD``.

    Example::

        add_routes(app, {
            "POST /uppercase": Server(uppercase, decode_json(UppercaseRequest), encode_json),
            "GET /healthz": health,
        })
    """
    added: list[web.AbstractRoute] = []
    for spec, handler in routes.items():
        method, _, path = spec.strip().partition(" ")
        path = path.strip()
        if not method or not path.startswith("/"):
            raise ValueError(f"route {spec!r} must look like 'METHOD /path'")
        method = method.upper()
        if method == "GET":
            added.append(app.router.add_get(path, handler))
        else:
            added.append(app.router.add_route(method, path, handler))
    return added
