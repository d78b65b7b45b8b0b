"""Where tracing state lives: typed keys in the kitpy Context, never the ambient OTel context.

:data:`SPAN` holds the current span (inner layers add events and attributes to
it); :data:`OTEL_CONTEXT` holds what came with the request besides it: the
remote parent and the W3C baggage, as an OpenTelemetry Context.
:func:`otel_context` combines the two into the OTel Context that parents the
next span and feeds propagation -- computed only when a child span starts or a
client injects, so a leaf span costs one Context value.  Every helper here
passes an explicit OTel Context to OpenTelemetry, so whatever the ambient
``contextvars`` context holds is never read.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import baggage as otel_baggage
from opentelemetry import trace
from opentelemetry.context import Context as OtelContext
from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from kitpy.context import Context, Key
from kitpy.tracing.sampling import DroppedSpan

__all__ = [
    "EMPTY",
    "OTEL_CONTEXT",
    "SERVER_SPAN",
    "SPAN",
    "baggage",
    "current_span",
    "log_fields",
    "otel_context",
    "set_span_attributes",
    "with_baggage",
    "with_span",
]

SPAN: Key[Span] = Key("otel.span")
"""The span of the current call (set by the tracing middleware and server hooks)."""

OTEL_CONTEXT: Key[OtelContext] = Key("otel.context")
"""The request's OpenTelemetry Context without the current span: remote parent and baggage."""

SERVER_SPAN: Key[Span | None] = Key("otel.server_span")
"""The SERVER span a transport hook started for this request, until an endpoint span joins it.

The server hooks end it in their finalizer; ``call_tracing(...,
join_server_span=True)`` uses it instead of starting a child span and then
sets this key to None, so a nested endpoint gets a span of its own.
"""

_TRACE_ID_END = 1 << 128
_SPAN_ID_END = 1 << 64

EMPTY = OtelContext()
"""An empty OpenTelemetry Context: parent of root spans, injects nothing."""


def current_span(ctx: Context) -> Span:
    """The current span, or ``INVALID_SPAN`` (a no-op span) when there is none."""
    return ctx.get(SPAN, trace.INVALID_SPAN)


def otel_context(ctx: Context) -> OtelContext:
    """The OpenTelemetry Context for ``ctx``: its baggage with its current span as the parent.

    Pass it to OpenTelemetry APIs that take a ``context=`` (starting a span by
    hand, a propagator); never rely on the ambient context instead.
    """
    base = ctx.get(OTEL_CONTEXT, EMPTY)
    span = ctx.get(SPAN)
    return base if span is None else trace.set_span_in_context(span, base)


def with_span(ctx: Context, span: Span) -> Context:
    """A child Context whose current span (and so the parent of new spans) is ``span``."""
    return ctx.with_value(SPAN, span)


def set_span_attributes(span: Span, attributes: Mapping[str, AttributeValue]) -> None:
    """Set ``attributes`` on ``span`` the way the SDK does at the least cost.

    The SDK's ``set_attributes`` checks the mapping as a whole before its
    items: ~17 k instructions a call, then ~5 k an item, where
    ``set_attribute`` costs ~11 k an item.  So one or two items are set one by
    one, more in one call; nothing at all for none.  The result is the same.

    Example::

        set_span_attributes(span, {"kitpy.endpoint": "uppercase"})
    """
    if len(attributes) > 2:
        span.set_attributes(attributes)
        return
    for key, value in attributes.items():
        span.set_attribute(key, value)


def baggage(ctx: Context) -> Mapping[str, object]:
    """The W3C baggage carried by ``ctx`` (received from upstream or added locally)."""
    return otel_baggage.get_all(ctx.get(OTEL_CONTEXT, EMPTY))


def with_baggage(ctx: Context, name: str, value: str) -> Context:
    """A child Context that also propagates the baggage entry ``name=value`` downstream."""
    parent = ctx.get(OTEL_CONTEXT, EMPTY)
    return ctx.with_value(OTEL_CONTEXT, otel_baggage.set_baggage(name, value, parent))


def log_fields(ctx: Context) -> dict[str, str]:
    """``trace_id`` and ``span_id`` (hex) of the current span, for log lines.

    Pass it as ``call_logging(logger, fields=log_fields)``; it returns an
    empty dict when the Context has no valid span.
    """
    span = ctx.get(SPAN)
    if span is None:
        return {}
    if type(span) is DroppedSpan:  # most requests when sampling: its ids, no SpanContext made
        trace_id, span_id = span.trace_id, span.span_id
        if not (0 < trace_id < _TRACE_ID_END and 0 < span_id < _SPAN_ID_END):  # is_valid's test
            return {}
    else:
        span_context = span.get_span_context()
        if not span_context.is_valid:
            return {}
        trace_id, span_id = span_context[:2]
    # valid ids fit 16 and 8 bytes: their hex is f"{id:032x}"'s, without parsing a format
    # spec (half the instructions; log_fields runs once per request)
    return {"trace_id": trace_id.to_bytes(16).hex(), "span_id": span_id.to_bytes(8).hex()}
