"""The instrumenting middleware: a request counter and a latency histogram per endpoint.

Both instruments are labelled ``method`` and ``code`` (``"OK"`` or the error's
:class:`~kitpy.errors.Code` name).  The children are resolved once per wrapped
endpoint: the ``OK`` pair when the middleware is applied, each error code's
pair the first time that code occurs; a call then costs one ``inc`` and one
``observe`` on pre-bound children.
"""

from __future__ import annotations

import time

from kitpy.context import Clock, Context
from kitpy.endpoint import Endpoint, GenericMiddleware, Req, Resp
from kitpy.errors import Code, error_code
from kitpy.metrics.instruments import Counter, Histogram

__all__ = ["instrumenting_middleware"]


def instrumenting_middleware(
    requests: Counter,
    latency: Histogram,
    *,
    method: str | None = None,
    clock: Clock = time.perf_counter,
) -> GenericMiddleware:
    """Count each call in ``requests`` and observe its duration (seconds) in ``latency``.

    Both instruments must have exactly the labels ``method`` and ``code``.
    ``method`` defaults to the wrapped endpoint's ``__name__``.

    Example::

        requests = prometheus.counter(registry, "requests_total", "Requests.", ("method", "code"))
        latency = prometheus.histogram(registry, "request_seconds", "Latency.", ("method", "code"))
        endpoint = instrumenting_middleware(requests, latency)(make_uppercase_endpoint(svc))
    """

    def middleware(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        name = method if method is not None else getattr(next, "__name__", "endpoint")
        ok_inc = requests.labels(method=name, code="OK").inc
        ok_observe = latency.labels(method=name, code="OK").observe
        failed: dict[Code, tuple[Counter, Histogram]] = {}

        async def endpoint(ctx: Context, request: Req) -> Resp:
            start = clock()
            try:
                response = await next(ctx, request)
            except BaseException as exc:
                took = clock() - start
                code = error_code(exc)
                children = failed.get(code)
                if children is None:
                    children = failed[code] = (
                        requests.labels(method=name, code=code.name),
                        latency.labels(method=name, code=code.name),
                    )
                children[0].inc()
                children[1].observe(took)
                raise
            ok_inc()
            ok_observe(clock() - start)
            return response

        endpoint.__name__ = endpoint.__qualname__ = name  # so outer layers see the name
        return endpoint

    return middleware
