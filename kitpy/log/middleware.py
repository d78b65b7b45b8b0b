"""The logging middleware: one structured log line per endpoint call.

A successful call logs at info; a client fault (bad input, not found, ...) or a
cancellation at warning with the error code and message; a server fault at
error with the exception, so the logger's processors render its traceback.
Only structlog's synchronous methods are used: its async ones hop to a thread
and cost several times more.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from kitpy.context import REQUEST_ID, Clock, Context, Key
from kitpy.endpoint import Endpoint, GenericMiddleware, Req, Resp
from kitpy.errors import error_code, is_server_fault

__all__ = ["Fields", "Logger", "logging_middleware"]


class Logger(Protocol):
    """The part of a structlog bound logger the middleware uses (its sync methods)."""

    def info(self, event: str, *args: Any, **kw: Any) -> Any: ...
    def warning(self, event: str, *args: Any, **kw: Any) -> Any: ...
    def error(self, event: str, *args: Any, **kw: Any) -> Any: ...


Fields = Callable[[Context], Mapping[str, Any]]
"""Extra fields for a call's log line, read from its Context (e.g. the trace id)."""


def logging_middleware(
    logger: Logger,
    *,
    method: str | None = None,
    event: str = "endpoint call",
    request_id_keys: Sequence[Key[str]] = (REQUEST_ID,),
    fields: Fields | None = None,
    clock: Clock = time.perf_counter,
) -> GenericMiddleware:
    """Log one line per call of the wrapped endpoint to ``logger`` (any structlog logger).

    The line carries ``method`` (default: the wrapped endpoint's ``__name__``),
    ``took`` (seconds, float), ``code`` (``"OK"`` or the error's
    :class:`~kitpy.errors.Code` name) and, on failure, ``error`` (the message).
    ``request_id`` is added when the Context holds one of ``request_id_keys``;
    ``fields(ctx)`` adds more, e.g. ``kitpy.tracing.log_fields`` for the trace id.

    Example::

        @logging_middleware(logger, method="uppercase")
        async def uppercase(ctx: Context, request: str) -> str:
            return request.upper()
    """
    info = logger.info
    warning = logger.warning
    error = logger.error
    keys = tuple(request_id_keys)

    def middleware(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        name = method if method is not None else getattr(next, "__name__", "endpoint")

        def context_fields(ctx: Context) -> Mapping[str, Any]:
            """``fields(ctx)`` plus the request id (which wins over a field of that name)."""
            request_id = None
            for key in keys:
                request_id = ctx.get(key)
                if request_id is not None:
                    break
            if fields is None:
                return {} if request_id is None else {"request_id": request_id}
            extra = fields(ctx)
            return extra if request_id is None else {**extra, "request_id": request_id}

        def failed(ctx: Context, exc: BaseException, took: float) -> None:
            code = error_code(exc)
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            if is_server_fault(code):
                error(
                    event,
                    method=name,
                    took=took,
                    code=code.name,
                    error=message,
                    exc_info=exc,
                    **context_fields(ctx),
                )
            else:
                warning(
                    event,
                    method=name,
                    took=took,
                    code=code.name,
                    error=message,
                    **context_fields(ctx),
                )

        async def endpoint(ctx: Context, request: Req) -> Resp:
            start = clock()
            try:
                response = await next(ctx, request)
            except BaseException as exc:
                failed(ctx, exc, clock() - start)
                raise
            took = clock() - start
            request_id = None
            for key in keys:
                request_id = ctx.get(key)
                if request_id is not None:
                    break
            if fields is not None:  # one call, no dict built beyond fields' own
                extra = fields(ctx)
                if request_id is None:
                    info(event, method=name, took=took, code="OK", **extra)
                elif "request_id" in extra:  # the Context's request id wins
                    info(
                        event,
                        method=name,
                        took=took,
                        code="OK",
                        **{**extra, "request_id": request_id},
                    )
                else:
                    info(event, method=name, took=took, code="OK", request_id=request_id, **extra)
            elif request_id is not None:
                info(event, method=name, took=took, code="OK", request_id=request_id)
            else:
                info(event, method=name, took=took, code="OK")
            return response

        endpoint.__name__ = endpoint.__qualname__ = name  # so outer layers see the name
        return endpoint

    return middleware
