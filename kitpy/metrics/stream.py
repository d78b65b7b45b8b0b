"""Stream metrics: streams by outcome, their durations, and the messages they carry.

The stream counterpart of :func:`~kitpy.metrics.call_metrics`.  Three
instruments:

* ``streams`` (a Counter labelled ``method`` and ``code``, like call_metrics'
  ``requests``): one per stream, when it ends;
* ``duration`` (a Histogram labelled ``method`` and ``code``): each stream's
  duration in seconds;
* ``messages`` (a Counter labelled ``method`` and ``direction``, which is
  ``"received"`` or ``"sent"``): every message, counted as it passes, so a
  long-lived stream's traffic shows while it lasts.

The children are resolved once per operation (and per code), as in
call_metrics: a message costs one ``inc`` on a pre-bound child.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from kitpy.context import OPERATION, Clock, Context
from kitpy.endpoint import endpoint_name, keep_name
from kitpy.endpoint.stream import StreamEndpoint, StreamMiddleware, close_stream, named_stream
from kitpy.errors import Code, error_code
from kitpy.metrics.instruments import Counter, Histogram

__all__ = ["stream_metrics"]


def stream_metrics(
    streams: Counter,
    duration: Histogram,
    messages: Counter,
    *,
    name: str | None = None,
    clock: Clock = time.perf_counter,
) -> StreamMiddleware:
    """Count each stream and its messages, and observe its duration (seconds).

    ``streams`` and ``duration`` must have exactly the labels ``method`` and
    ``code``; ``messages`` the labels ``method`` and ``direction``
    (``"received"``: requests the endpoint read, ``"sent"``: responses it
    yielded).  ``method`` is the operation name: ``name``, else the wrapped
    endpoint's name (:func:`~kitpy.endpoint.stream.named_stream`), else per
    stream the Context's :data:`~kitpy.context.OPERATION`, else ``"unknown"``.
    ``code`` is ``"OK"``, the error's code, or ``"CANCELLED"`` for a stream
    its reader closed early.  The duration runs from the first response asked
    for to the end.

    Example::

        streams, duration, messages = prometheus.stream_instruments(registry)
        endpoint = stream_metrics(streams, duration, messages)(named_stream("tokens")(tokens))
    """

    def middleware(next: StreamEndpoint[Any, Any]) -> StreamEndpoint[Any, Any]:
        known = name if name is not None else endpoint_name(next)
        ends: dict[tuple[str, Code], tuple[Counter, Histogram]] = {}
        flows: dict[str, tuple[Counter, Counter]] = {}

        def end(method: str, code: Code) -> tuple[Counter, Histogram]:
            """The (streams, duration) children for one name and code, resolved once."""
            found = ends.get((method, code))
            if found is None:
                found = ends[(method, code)] = (
                    streams.labels(method=method, code=code.name),
                    duration.labels(method=method, code=code.name),
                )
            return found

        def flow(method: str) -> tuple[Counter, Counter]:
            """The (received, sent) message children for one name, resolved once."""
            found = flows.get(method)
            if found is None:
                found = flows[method] = (
                    messages.labels(method=method, direction="received"),
                    messages.labels(method=method, direction="sent"),
                )
            return found

        # the common case, a known name: its OK pair and its message children are bound up front
        ok = end(known, Code.OK) if known is not None else None
        known_flow = flow(known) if known is not None else None

        async def endpoint(ctx: Context, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
            start = clock()
            method = known if known is not None else ctx.get(OPERATION) or "unknown"
            received, sent = known_flow if known_flow is not None else flow(method)

            async def counted() -> AsyncIterator[Any]:
                async for request in requests:
                    received.inc()
                    yield request

            try:
                responses = next(ctx, counted())
                try:
                    async for response in responses:
                        sent.inc()
                        yield response
                finally:
                    await close_stream(responses)
            except BaseException as exc:
                # GeneratorExit: the reader closed the stream early
                code = Code.CANCELLED if isinstance(exc, GeneratorExit) else error_code(exc)
                counter, histogram = end(method, code)
                counter.inc()
                histogram.observe(clock() - start)
                raise
            counter, histogram = ok if ok is not None else end(method, Code.OK)
            counter.inc()
            histogram.observe(clock() - start)

        if name is not None:
            return named_stream(name)(endpoint)
        return keep_name(endpoint, next)

    return middleware
