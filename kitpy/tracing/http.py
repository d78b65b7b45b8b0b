"""Tracing hooks for the HTTP transport (``kitpy.transport.http``).

Server: :func:`http_server_before` extracts ``traceparent``/baggage from the
request headers and starts a SERVER span named ``"{method} {route}"`` (the
route template, e.g. ``POST /users/{id}``) with the OpenTelemetry HTTP
semantic-convention attributes; :func:`http_server_finalizer` sets the status
code and ends it (status ERROR for 5xx only).  Client: :func:`http_client_before`
injects the Context's current span (usually the CLIENT span of a
``call_tracing(..., kind=SpanKind.CLIENT)``) into the outgoing headers.

Example::

    Server(endpoint, decode, encode,
           before=[http_server_before(tracer)], finalizer=[http_server_finalizer()])
    Client(url, encode, decode, before=[http_client_before()])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from kitpy.context import Context
from kitpy.tracing.context import EMPTY, OTEL_CONTEXT, SERVER_SPAN, SPAN, set_span_attributes
from kitpy.tracing.propagation import extractor, inject, w3c_propagator
from kitpy.tracing.sampling import span_starter

if TYPE_CHECKING:
    from aiohttp import web
    from multidict import CIMultiDict

__all__ = ["http_client_before", "http_server_before", "http_server_finalizer"]


class _Templates(dict[object, str | None]):
    """aiohttp route -> its template (e.g. ``/users/{id}``), found once per route.

    Index it with ``request.match_info.route``.  Only the application's own
    routes are kept (a fixed set); the system routes aiohttp makes per request
    for a 404 or 405 have no resource, give None and are not kept.
    """

    def __missing__(self, route: object) -> str | None:
        resource = getattr(route, "resource", None)
        if resource is None:
            return None
        template: str = resource.canonical
        self[route] = template
        return template


def _set_request_attributes(span: Span, request: web.Request, route: str | None) -> None:
    """The HTTP semantic-convention attributes of a recorded SERVER span."""
    host, _, port = request.host.rpartition(":")
    attributes: dict[str, AttributeValue] = {
        "http.request.method": request.method,
        "url.path": request.path,
        "url.scheme": request.scheme,
        "server.address": host or request.host,
        "client.address": request.remote or "",
        "user_agent.original": request.headers.get("User-Agent", ""),
    }
    if route:
        attributes["http.route"] = route
    if port.isdigit():
        attributes["server.port"] = int(port)
    span.set_attributes(attributes)  # one call: the SDK locks and copies per call


def http_server_before(
    tracer: Tracer, *, propagator: TextMapPropagator | None = None
) -> Callable[[Context, web.Request], Context]:
    """A server ``before`` hook: continue the caller's trace with a SERVER span.

    The span is the Context's current span for everything inside; end it with
    :func:`http_server_finalizer` in the same Server.  With the default
    (W3C) propagator, a request without trace headers skips extraction.
    """
    extract = extractor(propagator)
    start_span = span_starter(tracer)
    templates = _Templates()  # one lookup a request instead of four attribute reads

    def before(ctx: Context, request: web.Request) -> Context:
        parent = extract(request.headers)
        method = request.method
        route = templates[getattr(request.match_info, "route", None)]
        span = start_span(f"{method} {route}" if route else method, parent, SpanKind.SERVER, None)
        if span.is_recording():
            _set_request_attributes(span, request, route)
        if parent is EMPTY:  # no remote parent, no baggage: nothing to keep but the span
            return ctx.with_values({SPAN: span, SERVER_SPAN: span})
        return ctx.with_values({SPAN: span, OTEL_CONTEXT: parent, SERVER_SPAN: span})

    return before


def http_server_finalizer() -> Callable[[Context, int, int], None]:
    """A server ``finalizer``: record the response status and size, then end the SERVER span."""

    def finalizer(ctx: Context, status: int, size: int) -> None:
        span = ctx.get(SERVER_SPAN)
        if span is None or not span.is_recording():  # ending a span that records nothing is a no-op
            return
        attributes: dict[str, AttributeValue] = {
            "http.response.status_code": status,
            "http.response.body.size": size,
        }
        if status >= 500:
            attributes["error.type"] = str(status)
            span.set_status(Status(StatusCode.ERROR))
        set_span_attributes(span, attributes)
        span.end()

    return finalizer


def http_client_before(
    *, propagator: TextMapPropagator | None = None
) -> Callable[[Context, CIMultiDict[str]], Context]:
    """A client ``before`` hook: send the Context's trace context and baggage as headers."""
    prop = propagator if propagator is not None else w3c_propagator()

    def before(ctx: Context, headers: CIMultiDict[str]) -> Context:
        inject(prop, ctx, headers)
        return ctx

    return before
