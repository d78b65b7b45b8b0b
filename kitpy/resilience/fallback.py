"""Fallback middleware: answer with a degraded response when the call fails.

``fallback(handler)`` calls ``handler(ctx, request, error)`` instead of raising
when the classifier counts the error as a failure (default
:func:`~kitpy.errors.is_server_fault`: server faults and connection errors) and,
unless ``rejections=False``, when a resilience layer rejected the call
(:class:`~kitpy.errors.CircuitOpen`, :class:`~kitpy.errors.RateLimited`).
Client faults and cancellation propagate unless the classifier says otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from kitpy.context import Context
from kitpy.endpoint import Endpoint, Middleware, Req, Resp, keep_name
from kitpy.errors import CircuitOpen, Classifier, RateLimited, is_server_fault

__all__ = ["FallbackHandler", "fallback"]

FallbackHandler = Callable[[Context, Any, BaseException], Awaitable[Any]]
"""``async (ctx, request, error) -> response``: the degraded answer."""


def fallback(
    handler: Callable[[Context, Req, BaseException], Awaitable[Resp]],
    *,
    classifier: Classifier = is_server_fault,
    rejections: bool = True,
) -> Middleware[Req, Resp]:
    """Return ``await handler(ctx, request, error)`` when the call fails.

    ``classifier`` picks the errors that trigger it; ``rejections`` adds (True)
    or removes (False) ``CircuitOpen`` and ``RateLimited`` whatever the
    classifier says.  The wrapped endpoint keeps the inner one's name.

    The one kitpy middleware factory typed ``Middleware[Req, Resp]`` rather than
    ``GenericMiddleware``: the degraded answer must have the endpoint's response
    type, so the handler fixes ``Req`` and ``Resp``.

    Example::

        async def cached(ctx: Context, req: Quote, err: BaseException) -> Price:
            return last_known[req.symbol]

        quotes = chain(fallback(cached), breaker_mw)(quote_client)
    """

    def triggers(exc: BaseException) -> bool:
        if isinstance(exc, CircuitOpen | RateLimited):
            return rejections
        return classifier(exc)

    def middleware(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        async def endpoint(ctx: Context, request: Req) -> Resp:
            try:
                return await next(ctx, request)
            except Exception as exc:
                if not triggers(exc):
                    raise
                return await handler(ctx, request, exc)

        return keep_name(endpoint, next)

    return middleware
