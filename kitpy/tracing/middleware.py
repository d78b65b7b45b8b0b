"""The tracing middleware: one span per endpoint call, parented from the kitpy Context.

Status policy (shared with logging and the breaker through ``kitpy.errors``):
a server-fault code (UNKNOWN, INTERNAL, UNAVAILABLE, DEADLINE_EXCEEDED,
DATA_LOSS) sets the span status to ERROR and records the exception; a client
fault or a cancellation leaves the status unset and is recorded as the
attributes ``error.type`` and ``kitpy.code``.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from kitpy.context import Context
from kitpy.endpoint import Endpoint, GenericMiddleware, Req, Resp
from kitpy.errors import error_code, is_server_fault
from kitpy.tracing.context import EMPTY, OTEL_CONTEXT, SPAN

__all__ = ["record_error", "tracing_middleware"]


def record_error(span: Span, exc: BaseException) -> None:
    """Record ``exc`` on ``span`` following the status policy in this module's docstring."""
    if not span.is_recording():
        return
    code = error_code(exc)
    span.set_attribute("kitpy.code", code.name)
    span.set_attribute("error.type", code.name)
    if is_server_fault(code):
        span.record_exception(exc)
        message = getattr(exc, "message", None) or type(exc).__name__
        span.set_status(Status(StatusCode.ERROR, message))


def tracing_middleware(
    tracer: Tracer,
    *,
    name: str | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> GenericMiddleware:
    """Wrap each call of the endpoint in a span named ``name`` (default: its ``__name__``).

    The span's parent is the Context's current span, else the remote parent a
    server hook extracted, else none (a new trace); the ambient OpenTelemetry
    context is never consulted.  Inner layers find the span as ``ctx[SPAN]``.
    Use ``kind=SpanKind.CLIENT`` around a client endpoint so that its
    transport hook propagates this span.

    Example::

        endpoint = tracing_middleware(tracer, name="stringsvc.uppercase")(endpoint)
    """
    start_span = tracer.start_span
    set_span_in_context = trace.set_span_in_context

    def middleware(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        span_name = name if name is not None else getattr(next, "__name__", "endpoint")

        async def endpoint(ctx: Context, request: Req) -> Resp:
            parent = ctx.get(OTEL_CONTEXT, EMPTY)
            parent_span = ctx.get(SPAN)
            if parent_span is not None:
                parent = set_span_in_context(parent_span, parent)
            span = start_span(
                span_name,
                parent,
                kind,
                attributes,
                record_exception=False,
                set_status_on_exception=False,
            )
            inner = ctx.with_value(SPAN, span)
            try:
                response = await next(inner, request)
            except BaseException as exc:
                record_error(span, exc)
                span.end()
                raise
            span.end()
            return response

        # outer layers (logging, metrics) see the endpoint's own name, or else the span's
        endpoint.__name__ = endpoint.__qualname__ = getattr(next, "__name__", span_name)
        return endpoint

    return middleware
