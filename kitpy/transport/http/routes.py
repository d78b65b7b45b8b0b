"""Mount handlers on an aiohttp application: several in one call, and a JSON fallback."""

from __future__ import annotations

import itertools
import os
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import hdrs, web

from kitpy.context import Context
from kitpy.errors import NotFound
from kitpy.transport.http.errors import MethodNotAllowed, default_error_encoder
from kitpy.transport.http.keys import REQUEST_ID_HEADER, incoming_request_id

__all__ = ["Handler", "add_fallback", "add_routes"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
"""An aiohttp handler; a :class:`~kitpy.transport.http.Server` is one."""


def add_routes(app: web.Application, routes: Mapping[str, Handler]) -> list[web.AbstractRoute]:
    """Add ``{"METHOD /path": handler}`` routes to ``app``; return the aiohttp routes.

    Paths use aiohttp's syntax, so ``"GET /users/{id}"`` works, and the Server
    puts the template in the Context under ``ROUTE``.  A ``GET`` route also
    answers ``HEAD``; ``*`` is any method.  An unknown method (``"PSOT /hello"``)
    or a query string in the path (``"POST /hello?x=1"``) raises ``ValueError``
    naming the key: aiohttp would take either and never match a request.

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
        if method not in _METHODS:
            known = ", ".join(sorted(_METHODS))
            raise ValueError(f"route {spec!r}: unknown HTTP method {method!r} (one of {known})")
        if "?" in path or "#" in path:
            raise ValueError(
                f"route {spec!r}: a route is a path; a query string or fragment never matches"
            )
        if method == "GET":
            added.append(app.router.add_get(path, handler))
        else:
            added.append(app.router.add_route(method, path, handler))
    return added


_METHODS = frozenset({*hdrs.METH_ALL, hdrs.METH_ANY})
_FALLBACK = web.AppKey("kitpy.fallback", web.AbstractRoute)
_MAX_PATH = 200  # characters of the path quoted back in a 404/405 message
_MAX_METHOD = 32
_ROOT = Context()  # default_error_encoder does not read the Context


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def add_fallback(app: web.Application) -> web.AbstractRoute:
    """Answer requests no route matches with kitpy's JSON errors, not aiohttp's plain text.

    An unknown path gets 404 NOT_FOUND; a known path with another method gets
    405 (:class:`~kitpy.transport.http.MethodNotAllowed`, code UNIMPLEMENTED)
    with an ``Allow`` header listing its methods.  Both bodies are the standard
    ``{"error": {"code": ..., "message": ...}}`` made by
    :func:`~kitpy.transport.http.default_error_encoder`, and carry ``X-Request-Id``
    (the caller's, else a new one) as a Server's responses do.  Returns the route added.

    It is one catch-all route, ``* /{tail:.*}``, not a middleware, so matched
    requests pay nothing for it.  aiohttp 3.14's ``UrlDispatcher.resolve``
    looks resources up in an index keyed by the path up to the first variable
    (this route's key is ``"/"``), trying the full request path first and then
    each shorter prefix down to ``"/"``, and returns the first resource that
    matches.  So the catch-all is only tried once every more specific resource
    has failed; when one matches, the fallback is never looked at.

    Resources sharing the key ``"/"`` -- the path ``"/"`` itself, or one with a
    variable in its first segment (``"/{name}"``, ``"/v{version}/items"``) -- are
    tried in the order they were indexed, so a route of that kind added after the
    fallback would be shadowed.  To rule that out, the fallback moves itself to
    the end of that list when the application starts (``on_startup``, after
    which no route can be added); routes may be added before or after this call.
    A sub-application answers for everything under its prefix, so it needs its
    own fallback.  Calling this twice on one app raises ``RuntimeError``.

    Example::

        add_routes(app, {"POST /uppercase": uppercase_server})
        add_fallback(app)   # GET /nope -> 404, GET /uppercase -> 405, Allow: POST
    """
    if _FALLBACK in app:
        raise RuntimeError("add_fallback() was already called on this application")

    own: web.AbstractResource | None = None  # this route's resource, set below

    id_prefix = os.urandom(6).hex() + "-"  # ids for callers that sent none, as a Server's
    ids = itertools.count(1)

    async def fallback(request: web.Request) -> web.Response:
        allowed: set[str] = set()
        for resource in app.router.resources():
            if resource is not own:
                # (match, allowed methods): the methods are those of a resource whose
                # path matches, an empty set when the path does not match.
                _, methods = await resource.resolve(request)
                allowed |= methods
        method = _clip(request.method, _MAX_METHOD)
        path = _clip(request.path, _MAX_PATH)  # error_body escapes lone surrogates
        if allowed:
            methods_text = ", ".join(sorted(allowed))
            err: Exception = MethodNotAllowed(
                f"method {method} is not allowed for {path}; allowed: {methods_text}",
                headers={"Allow": methods_text},
            )
        else:
            err = NotFound(f"no route for {method} {path}")
        response = default_error_encoder(_ROOT, err)
        request_id = incoming_request_id(request.headers) or f"{id_prefix}{next(ids)}"
        response.headers[REQUEST_ID_HEADER] = request_id
        return response

    route = app.router.add_route("*", "/{tail:.*}", fallback)
    own = route.resource
    assert own is not None

    async def index_last(app: web.Application) -> None:
        """Re-index the catch-all behind every resource added after it (same ``"/"`` key)."""
        app.router.unindex_resource(own)
        app.router.index_resource(own)

    app.on_startup.append(index_last)
    app[_FALLBACK] = route
    return route
