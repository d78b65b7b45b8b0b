"""Call metrics: a request counter and a latency histogram per endpoint.

:func:`call_metrics` wraps the endpoint, so it never counts the errors of a
Server's own steps (a request that does not decode, a response that does not
encode); :func:`server_error_metrics` is the ``error_handler`` that counts those.

Both instruments are labelled ``method`` and ``code`` (``"OK"`` or the error's
:class:`~kitpy.errors.Code` name).  The children are resolved once per
operation and code: for an endpoint with a known name the ``OK`` pair when the
middleware is applied, every other pair the first time it occurs; a call then
costs one ``inc`` and one ``observe`` on pre-bound children.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from kitpy.context import ENDPOINT_ERROR, ENDPOINT_NAME, OPERATION, Clock, Context
from kitpy.endpoint import Endpoint, GenericMiddleware, Req, Resp, endpoint_name, keep_name
from kitpy.errors import Code, error_code
from kitpy.metrics.instruments import Counter, Histogram

__all__ = ["call_metrics", "server_error_metrics"]


def call_metrics(
    requests: Counter,
    latency: Histogram,
    *,
    name: str | None = None,
    clock: Clock = time.perf_counter,
) -> GenericMiddleware:
    """Count each call in ``requests`` and observe its duration (seconds) in ``latency``.

    Both instruments must have exactly the labels ``method`` and ``code``.
    ``method`` is the operation name: ``name``, else the wrapped endpoint's name
    (:func:`~kitpy.endpoint.named`), else per call the Context's
    :data:`~kitpy.context.OPERATION` (the route or gRPC method), else
    ``"unknown"``.  The wrapped endpoint keeps (or, with ``name``, gets) the name.

    Example::

        requests = prometheus.counter(registry, "requests_total", "Requests.", ("method", "code"))
        latency = prometheus.histogram(registry, "request_seconds", "Latency.", ("method", "code"))
        endpoint = call_metrics(requests, latency)(named("uppercase")(uppercase_endpoint))
    """

    def middleware(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        known = name if name is not None else endpoint_name(next)
        children: dict[tuple[str, Code], tuple[Counter, Histogram]] = {}

        def pair(method: str, code: Code) -> tuple[Counter, Histogram]:
            """The (counter, histogram) children for one name and code, resolved once."""
            found = children.get((method, code))
            if found is None:
                found = children[(method, code)] = (
                    requests.labels(method=method, code=code.name),
                    latency.labels(method=method, code=code.name),
                )
            return found

        def record(ctx: Context, code: Code, took: float) -> None:
            method = known if known is not None else ctx.get(OPERATION) or "unknown"
            counter, histogram = pair(method, code)
            counter.inc()
            histogram.observe(took)

        # the common case, a known name: the OK pair is bound up front
        ok = pair(known, Code.OK) if known is not None else None

        async def endpoint(ctx: Context, request: Req) -> Resp:
            start = clock()
            try:
                response = await next(ctx, request)
            except BaseException as exc:
                record(ctx, error_code(exc), clock() - start)
                raise
            if ok is None:
                record(ctx, Code.OK, clock() - start)
            else:
                ok[0].inc()
                ok[1].observe(clock() - start)
            return response

        return keep_name(endpoint, next, name=name)

    return middleware


def server_error_metrics(
    requests: Counter, *, endpoint_errors: bool = False
) -> Callable[[Context, BaseException], None]:
    """An ``error_handler`` for any kitpy Server that counts the errors its endpoint never raised.

    Pass the ``requests`` counter of :func:`call_metrics` (labels ``method``
    and ``code``), so that a request refused before the endpoint (a body that
    does not decode: INVALID_ARGUMENT) is counted like any other, and a
    response that cannot be encoded is counted INTERNAL -- alongside the
    endpoint's own OK, since the endpoint did succeed.  ``method`` is the
    endpoint's name (:data:`~kitpy.context.ENDPOINT_NAME`), else the Context's
    :data:`~kitpy.context.OPERATION`, as in ``call_metrics``.  Errors the
    endpoint raised are skipped (``call_metrics`` counted them) unless
    ``endpoint_errors=True``.

    Example::

        server = Server(endpoint, decode, encode, error_handler=server_error_metrics(requests))
    """

    def handle(ctx: Context, exc: BaseException) -> None:
        if not endpoint_errors and ctx.get(ENDPOINT_ERROR):
            return
        method = ctx.get(ENDPOINT_NAME) or ctx.get(OPERATION) or "unknown"
        requests.labels(method=method, code=error_code(exc).name).inc()

    return handle
