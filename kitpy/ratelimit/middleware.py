"""Rate-limiting middleware, as Go kit has it: erroring and delaying.

* :func:`erroring_limiter` -- rejects at once with :class:`~kitpy.errors.RateLimited`
  (RESOURCE_EXHAUSTED, HTTP 429) when the allower says no; the endpoint is not called.
* :func:`delaying_limiter` -- waits for its turn, but never past the Context deadline:
  when the wait would reach it, fails at once with :class:`~kitpy.errors.DeadlineExceeded`.

Both take an optional ``key`` function ``(ctx, request) -> str`` (per-caller limits,
e.g. by JWT subject or peer address) passed to the allower / waiter; without one
every call uses the key ``""``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, Protocol, cast

from kitpy.context import Context
from kitpy.endpoint import Endpoint, GenericMiddleware, Req, Resp
from kitpy.errors import DeadlineExceeded, KitError, RateLimited

__all__ = [
    "Allower",
    "AsyncAllower",
    "AsyncWaiter",
    "KeyFunc",
    "Waiter",
    "delaying_limiter",
    "erroring_limiter",
]

KeyFunc = Callable[[Context, Any], str]
"""``key(ctx, request) -> str``: which limit a call counts against."""

Sleep = Callable[[float], Awaitable[None]]


class Allower(Protocol):
    """Answers "may this call proceed now?" without waiting (e.g. :class:`TokenBucket`)."""

    def allow(self, key: str, /) -> bool:
        """Take a permit for ``key``; False when none is left."""
        ...


class AsyncAllower(Protocol):
    """An :class:`Allower` that must do I/O (e.g. the Redis limiter)."""

    async def allow(self, key: str, /) -> bool:
        """Take a permit for ``key``; False when none is left."""
        ...


class Waiter(Protocol):
    """Books the next permit and says how long to wait for it (e.g. :class:`TokenBucket`).

    A waiter may also have a ``refund(key)`` method: :func:`delaying_limiter` calls it
    when a caller is cancelled while waiting, so an abandoned booking does not use up
    a permit (:class:`TokenBucket` and :class:`KeyedTokenBuckets` have one).
    """

    def reserve(self, key: str, max_wait: float | None, /) -> float | None:
        """Seconds to wait (0.0 = go now), or None (nothing booked) if it would reach max_wait."""
        ...


class AsyncWaiter(Protocol):
    """Waits for a permit itself, doing I/O (e.g. the Redis limiter's ``acquire``)."""

    async def acquire(self, key: str, max_wait: float | None, /) -> None:
        """Return once a permit for ``key`` is taken; DeadlineExceeded if not in max_wait."""
        ...


async def _fail(error: KitError) -> NoReturn:
    raise error


def erroring_limiter(
    allower: Allower | AsyncAllower, *, key: KeyFunc | None = None
) -> GenericMiddleware:
    """Reject calls the ``allower`` refuses with ``RateLimited`` (429), without calling on.

    ``allower.allow`` may be a plain method (in-process buckets, checked with no
    await on the success path) or a coroutine method (Redis).

    Example::

        limited = erroring_limiter(TokenBucket(rate=100, burst=20))(endpoint)
    """
    if inspect.iscoroutinefunction(allower.allow):
        allow_async = cast(AsyncAllower, allower).allow

        def async_middleware(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
            async def endpoint(ctx: Context, request: Req) -> Resp:
                if not await allow_async("" if key is None else key(ctx, request)):
                    raise RateLimited("rate limit exceeded")
                return await next(ctx, request)

            return endpoint

        return async_middleware

    allow = cast(Allower, allower).allow

    def middleware(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        # A plain def: the success path returns next's awaitable without an extra
        # await frame; a rejection still raises only when awaited.
        if key is None:

            def endpoint(ctx: Context, request: Req) -> Awaitable[Resp]:
                if allow(""):
                    return next(ctx, request)
                return _fail(RateLimited("rate limit exceeded"))

            return endpoint

        key_of = key

        def keyed_endpoint(ctx: Context, request: Req) -> Awaitable[Resp]:
            if allow(key_of(ctx, request)):
                return next(ctx, request)
            return _fail(RateLimited("rate limit exceeded"))

        return keyed_endpoint

    return middleware


def delaying_limiter(
    waiter: Waiter | AsyncWaiter,
    *,
    key: KeyFunc | None = None,
    sleep: Sleep = asyncio.sleep,
) -> GenericMiddleware:
    """Delay calls until the ``waiter`` has a permit, never past the Context deadline.

    If the wait would reach the deadline the call fails at once with
    ``DeadlineExceeded`` and books nothing.  A call cancelled while it waits (its
    caller went away) gives its permit back when the waiter has a ``refund``
    method, so abandoned waits do not starve the callers behind them.  ``sleep``
    is injectable for tests (``FakeClock.sleep``).

    An :class:`AsyncWaiter` (the Redis limiter) does the waiting itself, bounded
    by the same remaining time (``sleep`` here is for waiters that book ahead).

    Example::

        smoothed = delaying_limiter(TokenBucket(rate=50, burst=1))(endpoint)
    """
    if not hasattr(waiter, "reserve"):
        return _async_delaying(waiter, key)
    reserve = cast(Waiter, waiter).reserve
    refund: Callable[[str], None] | None = getattr(waiter, "refund", None)

    async def delayed(
        delay: float, name: str, next: Endpoint[Req, Resp], ctx: Context, request: Req
    ) -> Resp:
        try:
            await sleep(delay)
        except asyncio.CancelledError:
            if refund is not None:
                refund(name)
            raise
        return await next(ctx, request)

    def middleware(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        def endpoint(ctx: Context, request: Req) -> Awaitable[Resp]:
            name = "" if key is None else key(ctx, request)
            delay = reserve(name, ctx.time_remaining())
            if delay is None:
                return _fail(DeadlineExceeded("rate limit wait would outlast the deadline"))
            if delay <= 0.0:
                return next(ctx, request)
            return delayed(delay, name, next, ctx, request)

        return endpoint

    return middleware


def _async_delaying(waiter: AsyncWaiter, key: KeyFunc | None) -> GenericMiddleware:
    """``delaying_limiter`` for a waiter that waits itself (awaited before every call)."""
    acquire = waiter.acquire

    def middleware(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        async def endpoint(ctx: Context, request: Req) -> Resp:
            await acquire("" if key is None else key(ctx, request), ctx.time_remaining())
            return await next(ctx, request)

        return endpoint

    return middleware
