"""svcname's observability: logger, metrics registry and tracer provider.

:func:`build_observability` creates all three -- nothing global: no
``structlog.configure``, no default Prometheus registry, no global tracer
provider -- and returns an :class:`Observability` holding the middleware and
the transport hooks that use them::

    obs = build_observability(log_format="json")
    eps = make_endpoints(svc, middleware=obs.server_middleware())
    app = make_http_app(eps, before=obs.http_server_before,
                        error_handler=obs.server_error_handler,
                        finalizer=obs.http_server_finalizer)
    app.router.add_get("/metrics", obs.metrics_handler)
    ...
    obs.shutdown()                       # flush spans on the way out

Each endpoint call gets (outermost first) a span, one log line, and the
``svcname_server_requests_total`` counter and ``..._request_duration_seconds``
histogram.  To export spans, pass a ``span_exporter`` (OTLP, console, ...).
``server_error_handler`` (every Server's ``error_handler``) logs and counts
what the endpoint middleware cannot see: a body that does not decode, a
response that cannot be encoded (logged with its traceback, counted INTERNAL).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TextIO

from aiohttp.typedefs import Handler
from kitpy import Context, GenericMiddleware, chain
from kitpy.log import call_logging, make_logger, server_error_logging
from kitpy.metrics import call_metrics, server_error_metrics
from kitpy.metrics.prometheus import CollectorRegistry, metrics_handler, request_metrics
from kitpy.tracing import (
    HeadSampler,
    call_tracing,
    grpc_server_before,
    grpc_server_finalizer,
    http_server_before,
    http_server_finalizer,
    log_fields,
)
from kitpy.transport import grpc as grpc_transport
from kitpy.transport import http as http_transport
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Tracer
from structlog.typing import FilteringBoundLogger

__all__ = ["Observability", "build_observability"]


@dataclass
class Observability:
    """The logger, registry and tracer provider of one process, and the hooks that use them."""

    logger: FilteringBoundLogger
    registry: CollectorRegistry
    tracer_provider: TracerProvider
    service_name: str = "svcname"
    tracer: Tracer = field(init=False)
    http_server_before: Sequence[http_transport.ServerBefore] = field(init=False)
    http_server_finalizer: Sequence[http_transport.ServerFinalizer] = field(init=False)
    grpc_server_before: Sequence[grpc_transport.ServerBefore] = field(init=False)
    grpc_server_finalizer: Sequence[grpc_transport.ServerFinalizer] = field(init=False)
    metrics_handler: Handler = field(init=False)
    server_error_handler: Callable[[Context, BaseException], None] = field(init=False)

    def __post_init__(self) -> None:
        self.tracer = self.tracer_provider.get_tracer(self.service_name)
        self._requests, self._latency = request_metrics(
            self.registry, namespace=self.service_name, subsystem="server"
        )
        self.http_server_before = (http_server_before(self.tracer),)
        self.http_server_finalizer = (http_server_finalizer(),)
        self.grpc_server_before = (grpc_server_before(self.tracer),)
        self.grpc_server_finalizer = (grpc_server_finalizer(),)
        self.metrics_handler = metrics_handler(self.registry)
        log_error = self._server_error_log = server_error_logging(self.logger, fields=log_fields)
        count_error = server_error_metrics(self._requests)

        def server_error_handler(ctx: Context, exc: BaseException) -> None:
            """Log and count what a Server refused or failed before or after the endpoint."""
            log_error(ctx, exc)
            count_error(ctx, exc)

        self.server_error_handler = server_error_handler

    def server_middleware(self) -> GenericMiddleware:
        """A span, a log line and request metrics around each server endpoint.

        Each is named by the endpoint's own name (``named("hello")``).
        """
        return chain(
            call_tracing(self.tracer),
            call_logging(self.logger, fields=log_fields),
            call_metrics(self._requests, self._latency),
        )

    def shutdown(self) -> None:
        """Flush the summarised refusals and stop span export (call once, on the way out)."""
        self._server_error_log.flush()
        self.tracer_provider.shutdown()


def build_observability(
    *,
    service_name: str = "svcname",
    log_format: Literal["json", "console"] = "json",
    log_level: int | str = logging.INFO,
    log_stream: TextIO | None = None,
    span_exporter: SpanExporter | None = None,
    sample_ratio: float = 1.0,
) -> Observability:
    """Build the logger, registry and tracer provider for one svcname process.

    Spans are recorded with head sampling ``ParentBased(TraceIdRatioBased(sample_ratio))``
    and sent to ``span_exporter`` when one is given.
    """
    logger = make_logger(
        format=log_format, level=log_level, stream=log_stream, service=service_name
    )
    # HeadSampler: kitpy's hooks ask the sampler before the SDK builds anything, so a
    # request that is not recorded costs its ids only (kitpy.tracing.HeadSampler)
    head = HeadSampler.ratio(sample_ratio)  # ParentBased(TraceIdRatioBased(sample_ratio))
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
        sampler=head,
        id_generator=head,
    )
    if span_exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(span_exporter))
    return Observability(logger, CollectorRegistry(), provider, service_name)
