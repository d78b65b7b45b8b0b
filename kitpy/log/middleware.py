"""Call logging: one structured log line per endpoint call, and per error only a Server saw.

A successful call logs at info; a client fault (bad input, not found, ...) or a
cancellation at warning with the error code and message; a server fault at
error with the exception, so the logger's processors render its traceback.
Only structlog's synchronous methods are used: its async ones hop to a thread
and cost several times more.

:func:`call_logging` wraps the endpoint, so it never sees the errors of a
Server's own steps (a request that does not decode, a response that does not
encode); :func:`server_error_logging` is the ``error_handler`` that logs those.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from typing import Any, Protocol

from kitpy.context import ENDPOINT_ERROR, ENDPOINT_NAME, OPERATION, REQUEST_ID, Clock, Context
from kitpy.endpoint import Endpoint, GenericMiddleware, Req, Resp, endpoint_name, keep_name, named
from kitpy.errors import Code, error_code, is_server_fault

__all__ = ["Fields", "Logger", "call_logging", "server_error_logging"]


class Logger(Protocol):
    """The part of a structlog bound logger the middleware uses (its sync methods)."""

    def info(self, event: str, *args: Any, **kw: Any) -> Any: ...
    def warning(self, event: str, *args: Any, **kw: Any) -> Any: ...
    def error(self, event: str, *args: Any, **kw: Any) -> Any: ...


Fields = Callable[[Context], Mapping[str, Any]]
"""Extra fields for a call's log line, read from its Context (e.g. the trace id)."""


def call_logging(
    logger: Logger,
    *,
    name: str | None = None,
    event: str = "endpoint call",
    fields: Fields | None = None,
    clock: Clock = time.perf_counter,
) -> GenericMiddleware:
    """Log one line per call of the wrapped endpoint to ``logger`` (any structlog logger).

    The line carries ``method`` (the operation name: ``name``, else the wrapped
    endpoint's name from :func:`~kitpy.endpoint.named`, else the Context's
    :data:`~kitpy.context.OPERATION` -- the route or gRPC method -- else
    ``"unknown"``), ``took`` (seconds, float), ``code`` (``"OK"`` or the
    error's :class:`~kitpy.errors.Code` name) and, on failure, ``error`` (the
    message).  ``request_id`` is added when the Context has a
    :data:`~kitpy.context.REQUEST_ID`; ``fields(ctx)`` adds more, e.g.
    ``kitpy.tracing.log_fields`` for the trace id.  The wrapped endpoint keeps
    (or, with ``name``, gets) the operation name.

    Example::

        endpoint = call_logging(logger)(named("uppercase")(make_uppercase_endpoint(svc)))
    """
    info = logger.info

    def middleware(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        known = name if name is not None else endpoint_name(next)

        def line_fields(ctx: Context) -> dict[str, Any]:
            """``method``, ``fields(ctx)`` and the request id (which wins over a field)."""
            out: dict[str, Any] = dict(fields(ctx)) if fields is not None else {}
            out["method"] = known if known is not None else ctx.get(OPERATION) or "unknown"
            request_id = ctx.get(REQUEST_ID)
            if request_id is not None:
                out["request_id"] = request_id
            return out

        async def endpoint(ctx: Context, request: Req) -> Resp:
            start = clock()
            try:
                response = await next(ctx, request)
            except BaseException as exc:
                _log_failure(logger, event, exc, took=clock() - start, **line_fields(ctx))
                raise
            took = clock() - start
            if known is not None and fields is None:  # the common case: no dict beyond kwargs
                request_id = ctx.get(REQUEST_ID)
                if request_id is None:
                    info(event, method=known, took=took, code="OK")
                else:
                    info(event, method=known, took=took, code="OK", request_id=request_id)
            else:
                info(event, took=took, code="OK", **line_fields(ctx))
            return response

        if name is not None:
            return named(name)(endpoint)
        return keep_name(endpoint, next)

    return middleware


def server_error_logging(
    logger: Logger,
    *,
    event: str = "request failed",
    fields: Fields | None = None,
    endpoint_errors: bool = False,
    summarise: Collection[Code] = (Code.UNAVAILABLE, Code.RESOURCE_EXHAUSTED),
    interval: float = 10.0,
    clock: Clock = time.monotonic,
) -> Callable[[Context, BaseException], None]:
    """An ``error_handler`` for any kitpy Server that logs the errors its endpoint never raised.

    Those are the errors of the Server's own steps, which :func:`call_logging`
    cannot see: a bad ``X-Timeout-Ms``, a ``before`` func that refused the
    request, a body that does not decode (warning, with the code and message),
    a response the encoder cannot serialise (error, with the traceback).  Errors
    the endpoint raised carry :data:`~kitpy.context.ENDPOINT_ERROR` and are
    skipped, as ``call_logging`` has logged them; ``endpoint_errors=True`` logs
    them too (for a service without ``call_logging``).  The line carries
    ``method`` (the endpoint's name, :data:`~kitpy.context.ENDPOINT_NAME`,
    else the Context's :data:`~kitpy.context.OPERATION`), ``code``,
    ``error``, ``request_id`` and ``fields(ctx)``.

    Refusals under load -- the codes in ``summarise``: a concurrency limit
    shedding (UNAVAILABLE), a rate limit (RESOURCE_EXHAUSTED) -- come in floods,
    when logging each would add to the overload: they are logged as one line
    per ``interval`` seconds for each method and code, ``event`` "requests
    refused" with their ``count`` and the last one's ``error``, at the first
    refusal after the interval (the metrics count every one).

    Example::

        server = Server(endpoint, decode, encode, error_handler=server_error_logging(logger))
    """

    summarised = frozenset(summarise)
    counts: dict[tuple[str, Code], int] = {}
    logged_at: dict[tuple[str, Code], float] = {}

    def handle(ctx: Context, exc: BaseException) -> None:
        if not endpoint_errors and ctx.get(ENDPOINT_ERROR):
            return
        method = ctx.get(ENDPOINT_NAME) or ctx.get(OPERATION) or "unknown"
        code = error_code(exc)
        if code in summarised:
            key = (method, code)
            counts[key] = counts.get(key, 0) + 1
            now = clock()
            if now - logged_at.get(key, -interval) < interval:
                return
            logged_at[key] = now
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            logger.warning(
                "requests refused", method=method, code=code.name, count=counts.pop(key),
                error=message,
            )  # fmt: skip
            return
        line: dict[str, Any] = dict(fields(ctx)) if fields is not None else {}
        line["method"] = method
        request_id = ctx.get(REQUEST_ID)
        if request_id is not None:
            line["request_id"] = request_id
        _log_failure(logger, event, exc, **line)

    return handle


def _log_failure(logger: Logger, event: str, exc: BaseException, **line: Any) -> None:
    """Log ``exc``: a server fault at error with its traceback, anything else at warning."""
    code = error_code(exc)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    if is_server_fault(code):
        logger.error(event, code=code.name, error=message, exc_info=exc, **line)
    else:
        logger.warning(event, code=code.name, error=message, **line)
