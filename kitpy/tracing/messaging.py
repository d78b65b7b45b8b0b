"""Tracing hooks for the broker transports (``kitpy.transport.nats``, ``kitpy.transport.amqp``).

Server: :func:`message_server_before` extracts ``traceparent`` / baggage from
the message headers and starts a CONSUMER span named after the subject or
queue (the Context's :data:`~kitpy.context.OPERATION`), so the consumer
continues the producer's trace; :func:`message_server_finalizer` records the
outcome code and ends it (status ERROR for server faults only).  Client:
:func:`message_client_before` injects the Context's current span (usually the
PRODUCER or CLIENT span of a ``call_tracing(..., kind=...)``) into the
outgoing headers.  The same hooks serve NATS and AMQP, whose headers are
plain string mappings.

Example::

    Server(endpoint, decode, encode,
           before=[message_server_before(tracer)], finalizer=[message_server_finalizer()])
    Publisher(nc, "events.uppercased", encode, before=[message_client_before()])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping

from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from kitpy.context import OPERATION, Context
from kitpy.errors import Code, is_server_fault
from kitpy.tracing.context import EMPTY, OTEL_CONTEXT, SERVER_SPAN, SPAN
from kitpy.tracing.propagation import extractor, inject, w3c_propagator
from kitpy.tracing.sampling import span_starter

__all__ = ["message_client_before", "message_server_before", "message_server_finalizer"]


def message_server_before(
    tracer: Tracer,
    *,
    kind: SpanKind = SpanKind.CONSUMER,
    propagator: TextMapPropagator | None = None,
) -> Callable[[Context, Mapping[str, str]], Context]:
    """A server ``before`` hook: continue the producer's trace with a CONSUMER span.

    End the span with :func:`message_server_finalizer` in the same Server.
    ``kind=SpanKind.SERVER`` suits request-reply, where the caller waits.
    """
    extract = extractor(propagator)
    start_span = span_starter(tracer)

    def before(ctx: Context, headers: Mapping[str, str]) -> Context:
        parent = extract(headers)
        span = start_span(ctx.get(OPERATION) or "message", parent, kind, None)
        if parent is EMPTY:
            return ctx.with_values({SPAN: span, SERVER_SPAN: span})
        return ctx.with_values({SPAN: span, OTEL_CONTEXT: parent, SERVER_SPAN: span})

    return before


def message_server_finalizer() -> Callable[[Context, Code], None]:
    """A server ``finalizer``: record the outcome code, then end the span the before hook began."""

    def finalizer(ctx: Context, code: Code) -> None:
        span = ctx.get(SERVER_SPAN)
        if span is None:
            return
        if span.is_recording():
            span.set_attribute("kitpy.code", code.name)
            if is_server_fault(code):
                span.set_attribute("error.type", code.name)
                span.set_status(Status(StatusCode.ERROR))
        span.end()

    return finalizer


def message_client_before(
    *, propagator: TextMapPropagator | None = None
) -> Callable[[Context, MutableMapping[str, str]], Context]:
    """A client ``before`` hook: send the Context's trace context and baggage as headers."""
    prop = propagator if propagator is not None else w3c_propagator()

    def before(ctx: Context, headers: MutableMapping[str, str]) -> Context:
        inject(prop, ctx, headers)
        return ctx

    return before
