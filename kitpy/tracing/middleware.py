"""Call tracing: one span per endpoint call, parented from the kitpy Context.

Status policy (shared with logging and the breaker through ``kitpy.errors``):
a server-fault code (UNKNOWN, INTERNAL, UNAVAILABLE, DEADLINE_EXCEEDED,
DATA_LOSS) sets the span status to ERROR and records the exception; a client
fault or a cancellation leaves the status unset and is recorded as the
attributes ``error.type`` and ``kitpy.code``.

Cost: a span per call is one ``Tracer.start_span`` even when the sampler drops
it (about 10-15 us with the SDK).  Behind a transport server hook, which already
starts a SERVER span per request, ``join_server_span=True`` makes the endpoint
use that span instead of starting a child: one span per request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from kitpy.context import OPERATION, Context
from kitpy.endpoint import Endpoint, GenericMiddleware, Req, Resp, endpoint_name, keep_name
from kitpy.errors import error_code, is_server_fault
from kitpy.tracing.context import EMPTY, OTEL_CONTEXT, SERVER_SPAN, SPAN, set_span_attributes
from kitpy.tracing.sampling import span_starter

__all__ = ["call_tracing", "record_error"]

_JOINS = (SpanKind.INTERNAL, SpanKind.SERVER)  # kinds that may join a transport's SERVER span


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


def call_tracing(
    tracer: Tracer,
    *,
    name: str | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, AttributeValue] | None = None,
    join_server_span: bool = False,
) -> GenericMiddleware:
    """Wrap each call of the endpoint in a span named for its operation.

    The span name is ``name``, else the wrapped endpoint's name
    (:func:`~kitpy.endpoint.named`), else per call the Context's
    :data:`~kitpy.context.OPERATION` (the route or gRPC method), else ``"unknown"``.

    The span's parent is the Context's current span, else the remote parent a
    server hook extracted, else none (a new trace); the ambient OpenTelemetry
    context is never consulted.  Inner layers find the span as ``ctx[SPAN]``.
    Use ``kind=SpanKind.CLIENT`` around a client endpoint so that its
    transport hook propagates this span.

    ``join_server_span=True`` (server endpoints): when the current span is the
    SERVER span that a transport hook (``http_server_before`` /
    ``grpc_server_before``) started for this request, start no span of its
    own; the call is traced by the SERVER span, which gets ``attributes``, the
    endpoint's name as ``kitpy.endpoint`` and errors (same status policy).
    Without such a span (a direct call, a nested endpoint), or with ``kind``
    CLIENT / PRODUCER / CONSUMER, it starts its span as usual.  It saves one
    ``start_span`` per request.

    Example::

        endpoint = call_tracing(tracer, name="stringsvc.uppercase")(endpoint)
        endpoint = call_tracing(tracer, join_server_span=True)(endpoint)
    """
    start_span = span_starter(tracer)
    set_span_in_context = trace.set_span_in_context

    def middleware(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        known = name if name is not None else endpoint_name(next)
        joined_attributes: dict[str, AttributeValue] = {**(attributes or {})}
        if known is not None:
            joined_attributes["kitpy.endpoint"] = known

        # A plain def: a request whose SERVER span records nothing (most, when sampling) goes
        # straight on to next's awaitable, with no coroutine of this layer's.
        def joined(ctx: Context, request: Req) -> Awaitable[Resp]:
            span = ctx.get(SPAN)
            if span is None or span is not ctx.get(SERVER_SPAN):
                return endpoint(ctx, request)
            # a nested traced endpoint must start its own span: the SERVER span is taken
            inner = ctx.with_value(SERVER_SPAN, None)
            if not span.is_recording():  # no attributes, no error to record on it
                return next(inner, request)
            set_span_attributes(span, joined_attributes)
            if known is None:
                span.set_attribute("kitpy.endpoint", ctx.get(OPERATION) or "unknown")
            return recorded(span, inner, request)

        async def recorded(span: Span, ctx: Context, request: Req) -> Resp:
            try:
                return await next(ctx, request)
            except BaseException as exc:
                record_error(span, exc)
                raise

        async def endpoint(ctx: Context, request: Req) -> Resp:
            parent = ctx.get(OTEL_CONTEXT, EMPTY)
            parent_span = ctx.get(SPAN)
            if parent_span is not None:
                parent = set_span_in_context(parent_span, parent)
            span = start_span(
                known if known is not None else ctx.get(OPERATION) or "unknown",
                parent,
                kind,
                attributes,
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

        outer = joined if join_server_span and kind in _JOINS else endpoint
        return keep_name(outer, next, name=name)

    return middleware
