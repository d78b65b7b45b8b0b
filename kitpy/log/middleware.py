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

import functools
import time
from collections.abc import Callable, Collection, Mapping
from types import MappingProxyType
from typing import Any, Protocol, cast

from kitpy.context import ENDPOINT_ERROR, ENDPOINT_NAME, OPERATION, REQUEST_ID, Clock, Context
from kitpy.endpoint import Endpoint, GenericMiddleware, Req, Resp, endpoint_name, keep_name
from kitpy.errors import Code, error_code, is_server_fault

__all__ = ["Fields", "Logger", "ServerErrorLog", "call_logging", "server_error_logging"]


class Logger(Protocol):
    """The part of a structlog bound logger the middleware uses (its sync methods)."""

    def info(self, event: str, *args: Any, **kw: Any) -> Any: ...
    def warning(self, event: str, *args: Any, **kw: Any) -> Any: ...
    def error(self, event: str, *args: Any, **kw: Any) -> Any: ...


Fields = Callable[[Context], Mapping[str, Any]]
"""Extra fields for a call's log line, read from its Context (e.g. the trace id)."""

_NO_FIELDS: Mapping[str, Any] = MappingProxyType({})


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
    emit, bound = _line_writer(logger)

    def middleware(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        known = name if name is not None else endpoint_name(next)

        def line_fields(ctx: Context, extra: Mapping[str, Any]) -> dict[str, Any]:
            """``method``, the ``extra`` fields and the request id (which wins over a field)."""
            out: dict[str, Any] = dict(extra)
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
                line = line_fields(ctx, fields(ctx) if fields is not None else _NO_FIELDS)
                _log_failure(logger, event, exc, took=clock() - start, **line)
                raise
            took = clock() - start
            method = known if known is not None else ctx.get(OPERATION) or "unknown"
            # The whole line as one dict, keys in structlog's order (the bound context, the
            # keywords, the event); method and the request id win over a field of that name.
            if fields is None:
                line = {**bound, "took": took, "code": "OK", "method": method}
            else:
                line = {**bound, "took": took, "code": "OK", **fields(ctx), "method": method}
            request_id = ctx.get(REQUEST_ID)
            if request_id is not None:
                line["request_id"] = request_id
            line["event"] = event
            emit(line)
            return response

        return keep_name(endpoint, next, name=name)

    return middleware


def _line_writer(logger: Logger) -> tuple[Callable[[dict[str, Any]], object], Mapping[str, Any]]:
    """How :func:`call_logging` writes a success line (a dict with ``event``, at info).

    Returns the function and the bound context the line starts with.  kitpy's
    JSON logger (``make_logger`` on a binary stream) takes the dict as the line
    (``write_event``), after its bound context, which is fixed (binding makes a
    new logger): one dict a line where keywords make three (the call's, the
    level method's ``**kw``, the event dict), ~7 k instructions less.  Any other
    structlog logger is given the dict as keywords and adds its context itself.
    """
    write_event: Callable[[str, dict[str, Any]], object] | None = getattr(
        logger, "write_event", None
    )
    if write_event is None:
        info = logger.info
        return (lambda line: info(**line)), {}
    import structlog  # here: only a kitpy JSON logger comes here, and it is structlog's

    return functools.partial(write_event, "info"), structlog.get_context(cast("Any", logger))


def server_error_logging(
    logger: Logger,
    *,
    event: str = "request failed",
    fields: Fields | None = None,
    endpoint_errors: bool = False,
    summarise: Collection[Code] = (Code.UNAVAILABLE, Code.RESOURCE_EXHAUSTED),
    interval: float = 10.0,
    clock: Clock = time.monotonic,
) -> ServerErrorLog:
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
    refusal after the interval; :meth:`ServerErrorLog.flush` (on the way out)
    logs what is still counted.  The metrics count every one.

    Example::

        log_errors = server_error_logging(logger)
        server = Server(endpoint, decode, encode, error_handler=log_errors)
        ...
        log_errors.flush()  # at shutdown
    """
    return ServerErrorLog(
        logger,
        event=event,
        fields=fields,
        endpoint_errors=endpoint_errors,
        summarise=summarise,
        interval=interval,
        clock=clock,
    )


class ServerErrorLog:
    """The ``error_handler`` :func:`server_error_logging` returns; call it with (ctx, exc)."""

    def __init__(
        self,
        logger: Logger,
        *,
        event: str,
        fields: Fields | None,
        endpoint_errors: bool,
        summarise: Collection[Code],
        interval: float,
        clock: Clock,
    ) -> None:
        self._logger = logger
        self._event = event
        self._fields = fields
        self._endpoint_errors = endpoint_errors
        self._summarised = frozenset(summarise)
        self._interval = interval
        self._clock = clock
        self._counts: dict[tuple[str, Code], tuple[int, str]] = {}  # (count, last message)
        self._logged_at: dict[tuple[str, Code], float] = {}

    def __call__(self, ctx: Context, exc: BaseException) -> None:
        if not self._endpoint_errors and ctx.get(ENDPOINT_ERROR):
            return
        method = ctx.get(ENDPOINT_NAME) or ctx.get(OPERATION) or "unknown"
        code = error_code(exc)
        if code in self._summarised:
            key = (method, code)
            count, _ = self._counts.get(key, (0, ""))
            self._counts[key] = (count + 1, _message(exc))
            now = self._clock()
            if now - self._logged_at.get(key, -self._interval) >= self._interval:
                self._logged_at[key] = now
                self._log_refusals(key)
            return
        line: dict[str, Any] = dict(self._fields(ctx)) if self._fields is not None else {}
        line["method"] = method
        request_id = ctx.get(REQUEST_ID)
        if request_id is not None:
            line["request_id"] = request_id
        _log_failure(self._logger, self._event, exc, **line)

    def flush(self) -> None:
        """Log the refusals counted since their last line (call it on the way out)."""
        for key in list(self._counts):
            self._log_refusals(key)

    def _log_refusals(self, key: tuple[str, Code]) -> None:
        count, message = self._counts.pop(key)
        self._logger.warning(
            "requests refused", method=key[0], code=key[1].name, count=count, error=message
        )


def _message(exc: BaseException) -> str:
    return getattr(exc, "message", None) or str(exc) or type(exc).__name__


def _log_failure(logger: Logger, event: str, exc: BaseException, **line: Any) -> None:
    """Log ``exc``: a server fault at error with its traceback, anything else at warning."""
    code = error_code(exc)
    message = _message(exc)
    if is_server_fault(code):
        logger.error(event, code=code.name, error=message, exc_info=exc, **line)
    else:
        logger.warning(event, code=code.name, error=message, **line)
