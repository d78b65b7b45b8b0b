"""Stream logging: one structured log line per stream, when it ends, with its message counts.

The stream counterpart of :func:`~kitpy.log.call_logging`: the same fields
(``method``, ``took``, ``code``, ``error``, ``request_id``, ``fields(ctx)``)
and the same levels (info on success; warning for a client fault or a
cancellation; error with the exception for a server fault), plus ``received``
(requests the endpoint read) and ``sent`` (responses it yielded).

A stream that its reader stops early -- ``close_stream``, ``aclose()``, the
transport's client going away -- is logged CANCELLED, after the endpoint's
iterator has been closed (its ``finally`` blocks have run).  A stream whose
reader never asked for a first response never started, and logs nothing.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from kitpy.context import OPERATION, REQUEST_ID, Clock, Context
from kitpy.endpoint import endpoint_name, keep_name
from kitpy.endpoint.stream import StreamEndpoint, StreamMiddleware, close_stream, named_stream
from kitpy.errors import Code, error_code, is_server_fault
from kitpy.log.middleware import Fields, Logger

__all__ = ["stream_logging"]

_CLOSED_EARLY = "the stream was closed before its end"  # the error of a stream read partly


def stream_logging(
    logger: Logger,
    *,
    name: str | None = None,
    event: str = "stream call",
    fields: Fields | None = None,
    clock: Clock = time.perf_counter,
) -> StreamMiddleware:
    """Log one line per stream of the wrapped stream endpoint, when the stream ends.

    The line is :func:`~kitpy.log.call_logging`'s -- ``method`` (``name``,
    else the endpoint's name from :func:`~kitpy.endpoint.stream.named_stream`,
    else the Context's :data:`~kitpy.context.OPERATION`, else ``"unknown"``),
    ``took`` (seconds from the first response asked for to the end), ``code``,
    ``error`` on failure, ``request_id`` and ``fields(ctx)`` (e.g.
    ``kitpy.tracing.log_fields``) -- plus the counts ``received`` and
    ``sent``.  A stream its reader closes early is logged CANCELLED at warning.
    Per message the layer adds one integer increment each way.

    Example::

        @stream_logging(logger, name="tokens")
        @server_stream
        async def tokens(ctx: Context, text: str) -> AsyncIterator[str]:
            for word in text.split():
                yield word

        assert await collect(tokens(Context(), messages("go kit"))) == ["go", "kit"]
        # {"event": "stream call", "method": "tokens", "code": "OK", "received": 1, "sent": 2, ...}
    """

    def middleware(next: StreamEndpoint[Any, Any]) -> StreamEndpoint[Any, Any]:
        known = name if name is not None else endpoint_name(next)

        def line(ctx: Context, took: float, received: int, sent: int) -> dict[str, Any]:
            """The line's fields but ``code``/``error``; the request id wins over a field."""
            out: dict[str, Any] = dict(fields(ctx)) if fields is not None else {}
            out["method"] = known if known is not None else ctx.get(OPERATION) or "unknown"
            out["took"] = took
            out["received"] = received
            out["sent"] = sent
            request_id = ctx.get(REQUEST_ID)
            if request_id is not None:
                out["request_id"] = request_id
            return out

        async def endpoint(ctx: Context, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
            start = clock()
            received = 0
            sent = 0

            async def counted() -> AsyncIterator[Any]:
                nonlocal received
                async for request in requests:
                    received += 1
                    yield request

            try:
                responses = next(ctx, counted())
                try:
                    async for response in responses:
                        sent += 1
                        yield response
                finally:
                    await close_stream(responses)
            except BaseException as exc:
                _log_failure(logger, event, exc, line(ctx, clock() - start, received, sent))
                raise
            logger.info(event, code="OK", **line(ctx, clock() - start, received, sent))

        if name is not None:
            return named_stream(name)(endpoint)
        return keep_name(endpoint, next)

    return middleware


def _log_failure(logger: Logger, event: str, exc: BaseException, line: dict[str, Any]) -> None:
    """As call_logging: a server fault at error with its traceback, anything else at warning."""
    if isinstance(exc, GeneratorExit):  # the reader closed the stream: not an error of ours
        logger.warning(event, code=Code.CANCELLED.name, error=_CLOSED_EARLY, **line)
        return
    code = error_code(exc)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    if is_server_fault(code):
        logger.error(event, code=code.name, error=message, exc_info=exc, **line)
    else:
        logger.warning(event, code=code.name, error=message, **line)
