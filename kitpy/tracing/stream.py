"""Stream tracing: one span per stream, from its start to its end, with its message counts.

The stream counterpart of :func:`~kitpy.tracing.call_tracing`, with the same
options, naming, parenting and status policy (:func:`record_error`: ERROR only
for server faults).  The span starts when the reader asks for the first
response and ends when the stream ends; the endpoint finds it as
``ctx[SPAN]``, so its child spans and its log lines (``log_fields``) join the
stream's trace.  At the end the span gets the attributes
``kitpy.messages.received`` (requests the endpoint read) and
``kitpy.messages.sent`` (responses it yielded).

OpenTelemetry's RPC conventions describe messages as one ``rpc.message`` span
event per message; that costs an event per message, so the counts are two
attributes set once instead.  A stream its reader closes early ends its span
with ``kitpy.code`` CANCELLED and the status unset, like a cancelled call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Tracer
from opentelemetry.util.types import AttributeValue

from kitpy.context import OPERATION, Context
from kitpy.endpoint import endpoint_name, keep_name
from kitpy.endpoint.stream import StreamEndpoint, StreamMiddleware, close_stream, named_stream
from kitpy.errors import Cancelled
from kitpy.tracing.context import EMPTY, OTEL_CONTEXT, SERVER_SPAN, SPAN, set_span_attributes
from kitpy.tracing.middleware import record_error
from kitpy.tracing.sampling import span_starter

__all__ = ["stream_tracing"]

_RECEIVED = "kitpy.messages.received"  # span attribute: requests the endpoint read
_SENT = "kitpy.messages.sent"  # span attribute: responses the endpoint yielded

_JOINS = (SpanKind.INTERNAL, SpanKind.SERVER)  # kinds that may join a transport's SERVER span


def stream_tracing(
    tracer: Tracer,
    *,
    name: str | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, AttributeValue] | None = None,
    join_server_span: bool = False,
) -> StreamMiddleware:
    """Wrap each stream of the stream endpoint in one span named for its operation.

    The span name is ``name``, else the wrapped endpoint's name
    (:func:`~kitpy.endpoint.stream.named_stream`), else per stream the
    Context's :data:`~kitpy.context.OPERATION`, else ``"unknown"``.  Its
    parent is the Context's current span, else the remote parent a server
    hook extracted, else none; the ambient OpenTelemetry context is never read.

    ``join_server_span=True``: when the current span is the SERVER span a
    transport hook started for this call, start no span of its own and record
    on that one (``attributes``, ``kitpy.endpoint``, the counts and errors);
    the hook's finalizer ends it.  As in call_tracing.

    Example::

        @stream_tracing(tracer, name="tokens")
        @server_stream
        async def tokens(ctx: Context, text: str) -> AsyncIterator[str]:
            for word in text.split():
                yield word

        assert await collect(tokens(Context(), messages("go kit"))) == ["go", "kit"]
        # one span "tokens" with kitpy.messages.received=1, kitpy.messages.sent=2
    """
    start_span = span_starter(tracer)
    set_span_in_context = trace.set_span_in_context

    def middleware(next: StreamEndpoint[Any, Any]) -> StreamEndpoint[Any, Any]:
        known = name if name is not None else endpoint_name(next)
        joined_attributes: dict[str, AttributeValue] = {**(attributes or {})}
        if known is not None:
            joined_attributes["kitpy.endpoint"] = known

        def endpoint(ctx: Context, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
            return traced(ctx, requests, None)

        def joined(ctx: Context, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
            span = ctx.get(SPAN)
            if span is None or span is not ctx.get(SERVER_SPAN):
                return traced(ctx, requests, None)
            return traced(ctx, requests, span)

        async def traced(
            ctx: Context, requests: AsyncIterator[Any], server_span: Span | None
        ) -> AsyncIterator[Any]:
            """The stream in its own span, or (``server_span``) in the transport's SERVER span."""
            if server_span is None:
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
            else:  # join the transport's SERVER span; a nested traced endpoint starts its own
                span = server_span
                if span.is_recording():
                    set_span_attributes(span, joined_attributes)
                    if known is None:
                        span.set_attribute("kitpy.endpoint", ctx.get(OPERATION) or "unknown")
                inner = ctx.with_value(SERVER_SPAN, None)
            received = 0
            sent = 0

            async def counted() -> AsyncIterator[Any]:
                nonlocal received
                async for request in requests:
                    received += 1
                    yield request

            try:
                responses = next(inner, counted())
                try:
                    async for response in responses:
                        sent += 1
                        yield response
                finally:
                    await close_stream(responses)
            except BaseException as exc:
                if span.is_recording():
                    set_span_attributes(span, {_RECEIVED: received, _SENT: sent})
                    record_error(span, _cancelled() if isinstance(exc, GeneratorExit) else exc)
                if server_span is None:  # a joined SERVER span is ended by the hook's finalizer
                    span.end()
                raise
            if span.is_recording():
                set_span_attributes(span, {_RECEIVED: received, _SENT: sent})
            if server_span is None:
                span.end()

        outer = joined if join_server_span and kind in _JOINS else endpoint
        if name is not None:
            return named_stream(name)(outer)
        return keep_name(outer, next)

    return middleware


def _cancelled() -> Cancelled:
    """What a stream its reader closed early (GeneratorExit) is recorded as: a cancellation."""
    return Cancelled("the stream was closed before its end")
