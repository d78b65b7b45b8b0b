"""What the gateway records per request, labelled by route: a span, metrics, an access-log line.

A :class:`RouteObserver` holds the application's logger, instruments and
tracer (each optional) and gives each route's handler its hooks
(:meth:`RouteObserver.hooks`):

* **tracing** -- a SERVER span named after the route (``route.name``),
  continuing the caller's W3C trace; the request goes upstream with the
  gateway's span as parent (``traceparent`` in the HTTP headers or the gRPC
  metadata), so the upstream's spans nest under it;
* **metrics** -- ``requests`` (a counter labelled ``route`` and ``code``, the
  HTTP status) and ``duration`` (a histogram of seconds, labelled ``route``);
* **access log** -- one ``request`` line per request with ``route``,
  ``method``, ``path``, ``status``, ``bytes``, ``duration_ms``,
  ``request_id`` and ``client``.

:func:`gateway_instruments` registers the two instruments on a Prometheus
registry.  Status 499 means the caller went away before an answer began.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from kitpy.context import REQUEST_ID, Context, Key
from kitpy.gateway.routes import Route
from kitpy.log.middleware import Logger
from kitpy.metrics.instruments import Counter, Histogram
from kitpy.transport.http.types import ClientBefore, ServerBefore, ServerFinalizer

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer
    from prometheus_client import CollectorRegistry

__all__ = ["Hooks", "RouteObserver", "gateway_instruments"]

Pairs = Callable[[Context], Iterable[tuple[str, str]]]


_SEEN: Key[tuple[float, web.Request]] = Key("gateway.seen")
"""When the request arrived, and the request (the access log reads its method, path and
peer only when it writes the line)."""


@dataclass(frozen=True, slots=True)
class Hooks:
    """A route handler's observation hooks (each tuple may be empty)."""

    before: tuple[ServerBefore, ...] = ()
    """Run first: note the start, start the span."""
    finalizer: tuple[ServerFinalizer, ...] = ()
    """Run when the answer is done: end the span, count, log."""
    client_before: tuple[ClientBefore, ...] = ()
    """Run on the headers going upstream: the trace context."""
    metadata: Pairs | None = None
    """Extra gRPC metadata for a Connect route's upstream call: the trace context."""


class RouteObserver:
    """The logger, instruments and tracer the gateway records requests with.

    Each is optional: ``logger`` (a structlog logger, e.g.
    :func:`kitpy.log.make_logger`) writes the access log; ``requests`` and
    ``duration`` (from :func:`gateway_instruments`, or any kitpy.metrics
    instruments) count and time; ``tracer`` (an OpenTelemetry ``Tracer``,
    ``kitpy[otel]``) traces.  ``clock`` measures durations.

    Example::

        requests, duration = gateway_instruments(CollectorRegistry())
        observer = RouteObserver(logger=make_logger(), tracer=provider.get_tracer("gateway"),
                                 requests=requests, duration=duration)
    """

    __slots__ = ("_clock", "duration", "logger", "requests", "tracer")

    def __init__(
        self,
        *,
        logger: Logger | None = None,
        requests: Counter | None = None,
        duration: Histogram | None = None,
        tracer: Tracer | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.logger = logger
        self.requests = requests
        self.duration = duration
        self.tracer = tracer
        self._clock = clock

    def hooks(self, route: Route) -> Hooks:
        """The hooks of ``route``'s handler."""
        before: list[ServerBefore] = []
        finalizer: list[ServerFinalizer] = []
        client_before: tuple[ClientBefore, ...] = ()
        metadata: Pairs | None = None
        if self.logger is not None or self.requests is not None or self.duration is not None:
            before.append(self._note)
            finalizer.append(self._record(route))
        if self.tracer is not None:
            span_before, span_finalizer, client_before, metadata = _tracing(self.tracer, route)
            before.append(span_before)
            finalizer.insert(0, span_finalizer)
        return Hooks(tuple(before), tuple(finalizer), client_before, metadata)

    def _note(self, ctx: Context, request: web.Request) -> Context:
        return ctx.with_value(_SEEN, (self._clock(), request))

    def _record(self, route: Route) -> ServerFinalizer:
        name = route.name
        logger, clock = self.logger, self._clock
        duration = None if self.duration is None else self.duration.labels(route=name)
        requests = self.requests
        by_status: dict[int, Counter] = {}  # the counter's child per status, made once

        def record(ctx: Context, status: int, size: int) -> None:
            seen = ctx.get(_SEEN)
            if seen is None:
                return
            start, request = seen
            elapsed = clock() - start
            if requests is not None:
                counter = by_status.get(status)
                if counter is None:
                    counter = by_status[status] = requests.labels(route=name, code=str(status))
                counter.inc()
            if duration is not None:
                duration.observe(elapsed)
            if logger is not None:
                logger.info(
                    "request",
                    route=name,
                    method=request.method,
                    path=request.path[:300],
                    status=status,
                    bytes=size,
                    duration_ms=round(elapsed * 1000, 3),
                    request_id=ctx.get(REQUEST_ID),
                    client=request.remote or "",
                )

        return record


def _tracing(
    tracer: Tracer, route: Route
) -> tuple[ServerBefore, ServerFinalizer, tuple[ClientBefore, ...], Pairs]:
    """The span hooks of ``route``: kitpy.tracing's HTTP hooks, the span named by route."""
    from kitpy.tracing import (
        current_span,
        http_client_before,
        http_server_before,
        http_server_finalizer,
    )
    from kitpy.tracing.propagation import inject, w3c_propagator

    start = http_server_before(tracer)
    name, prefix = route.name, route.prefix

    def before(ctx: Context, request: web.Request) -> Context:
        ctx = start(ctx, request)
        span = current_span(ctx)
        if span.is_recording():
            span.update_name(name)
            span.set_attribute("http.route", prefix)
            span.set_attribute("kitpy.gateway.route", name)
        return ctx

    propagator = w3c_propagator()

    def metadata(ctx: Context) -> list[tuple[str, str]]:
        carrier: dict[str, str] = {}
        inject(propagator, ctx, carrier)
        return list(carrier.items())

    return before, http_server_finalizer(), (http_client_before(),), metadata


def gateway_instruments(
    registry: CollectorRegistry, *, namespace: str = "gateway"
) -> tuple[Counter, Histogram]:
    """``requests`` (``<namespace>_requests_total{route, code}``) and ``duration``
    (``<namespace>_request_duration_seconds{route}``), registered on ``registry``.

    Example::

        requests, duration = gateway_instruments(registry)
        observer = RouteObserver(requests=requests, duration=duration)
    """
    from kitpy.metrics.prometheus import counter, histogram

    requests = counter(
        registry, "requests", "Requests through the gateway", ("route", "code"), namespace=namespace
    )
    duration = histogram(
        registry,
        "request_duration_seconds",
        "Seconds per request through the gateway, answer included",
        ("route",),
        namespace=namespace,
    )
    return requests, duration
