"""``rate_limit``: the rate-limiting middleware, rejecting or waiting.

* ``rate_limit(limiter)`` rejects at once with :class:`~kitpy.errors.RateLimited`
  (RESOURCE_EXHAUSTED, HTTP 429) when the limiter has no permit; the endpoint
  is not called.  The limiter is an :class:`Allower` (or :class:`AsyncAllower`).
* ``rate_limit(limiter, wait=True)`` waits for its turn, but never past the
  Context deadline: when the wait would reach it, the call fails at once with
  :class:`~kitpy.errors.DeadlineExceeded`.  The limiter is a :class:`Waiter`
  (or :class:`AsyncWaiter`).

A :class:`~kitpy.ratelimit.TokenBucket` and the Redis limiter serve both modes.
An optional ``key`` function ``(ctx, request) -> str`` picks the limit a call
counts against (per-caller limits, e.g. by JWT subject or peer address);
without one every call uses the key ``""``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol, cast, overload

from kitpy.context import Context
from kitpy.endpoint import Endpoint, GenericMiddleware, Req, Resp, failed, keep_name
from kitpy.errors import DeadlineExceeded, RateLimited

__all__ = [
    "Allower",
    "AsyncAllower",
    "AsyncLimiter",
    "AsyncWaiter",
    "KeyFunc",
    "Limiter",
    "Waiter",
    "rate_limit",
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

    A waiter may also have a ``refund(key)`` method: ``rate_limit(..., wait=True)``
    calls it when a caller is cancelled while waiting, so an abandoned booking
    does not use up a permit (:class:`TokenBucket` and :class:`KeyedTokenBuckets`
    have one).
    """

    def reserve(self, key: str, max_wait: float | None, /) -> float | None:
        """Seconds to wait (0.0 = go now), or None (nothing booked) if it would reach max_wait."""
        ...


class AsyncWaiter(Protocol):
    """Waits for a permit itself, doing I/O (e.g. the Redis limiter's ``acquire``)."""

    async def acquire(self, key: str, max_wait: float | None, /) -> None:
        """Return once a permit for ``key`` is taken; DeadlineExceeded if not in max_wait."""
        ...


class Limiter(Allower, Waiter, Protocol):
    """Serves both modes in process: an :class:`Allower` and a :class:`Waiter` (a token bucket)."""


class AsyncLimiter(AsyncAllower, AsyncWaiter, Protocol):
    """Serves both modes doing I/O: an :class:`AsyncAllower` and an :class:`AsyncWaiter`."""


@overload
def rate_limit(
    limiter: Allower | AsyncAllower,
    *,
    wait: Literal[False] = False,
    key: KeyFunc | None = None,
    sleep: Sleep = asyncio.sleep,
) -> GenericMiddleware: ...


@overload
def rate_limit(
    limiter: Waiter | AsyncWaiter,
    *,
    wait: Literal[True],
    key: KeyFunc | None = None,
    sleep: Sleep = asyncio.sleep,
) -> GenericMiddleware: ...


@overload
def rate_limit(
    limiter: Limiter | AsyncLimiter,
    *,
    wait: bool,
    key: KeyFunc | None = None,
    sleep: Sleep = asyncio.sleep,
) -> GenericMiddleware: ...


def rate_limit(
    limiter: Allower | AsyncAllower | Waiter | AsyncWaiter,
    *,
    wait: bool = False,
    key: KeyFunc | None = None,
    sleep: Sleep = asyncio.sleep,
) -> GenericMiddleware:
    """Limit how often the wrapped endpoint runs: reject the excess, or make it wait.

    ``wait=False`` (the default, for servers protecting themselves): a call the
    limiter refuses raises ``RateLimited`` (429) without calling on.  The
    limiter's ``allow`` may be a plain method (in-process buckets, checked with
    no await on the success path) or a coroutine method (Redis).

    ``wait=True`` (for clients smoothing their own traffic): a call waits for
    the next permit, but if the wait would reach the Context deadline it fails
    at once with ``DeadlineExceeded`` and books nothing.  A call cancelled while
    it waits gives its permit back when the limiter has a ``refund`` method, so
    abandoned waits do not starve the callers behind them.  An
    :class:`AsyncWaiter` (the Redis limiter) does the waiting itself, bounded
    by the same remaining time; ``sleep`` (injectable for tests, e.g.
    ``FakeClock.sleep``) is for waiters that book ahead.

    A limiter that cannot serve the chosen mode is a type error for mypy and a
    ``TypeError`` when the middleware is built.  The wrapped endpoint keeps the
    inner one's name.

    Example::

        protected = rate_limit(TokenBucket(rate=100.0, burst=20))(endpoint)
        smoothed = rate_limit(TokenBucket(rate=50.0, burst=1), wait=True)(client)
        per_user = rate_limit(KeyedTokenBuckets(5.0, burst=10), key=user_of)(endpoint)
    """
    if not wait:
        if not callable(getattr(limiter, "allow", None)):
            raise TypeError(
                f"rate_limit(wait=False) needs a limiter with allow(key), not {limiter!r}"
            )
        return _rejecting(cast(Allower | AsyncAllower, limiter), key)
    if callable(getattr(limiter, "reserve", None)):
        return _delaying(cast(Waiter, limiter), key, sleep)
    if callable(getattr(limiter, "acquire", None)):
        return _waiting_itself(cast(AsyncWaiter, limiter), key)
    raise TypeError(
        f"rate_limit(wait=True) needs a limiter with reserve(key, max_wait) or "
        f"acquire(key, max_wait), not {limiter!r}"
    )


def _rejecting(allower: Allower | AsyncAllower, key: KeyFunc | None) -> GenericMiddleware:
    """``rate_limit(wait=False)``: refuse with ``RateLimited`` when no permit is left."""
    if inspect.iscoroutinefunction(allower.allow):
        allow_async = cast(AsyncAllower, allower).allow

        def async_middleware(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
            async def endpoint(ctx: Context, request: Req) -> Resp:
                if not await allow_async("" if key is None else key(ctx, request)):
                    raise RateLimited("rate limit exceeded")
                return await next(ctx, request)

            return keep_name(endpoint, next)

        return async_middleware

    allow = cast(Allower, allower).allow

    def middleware(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        # A plain def: the success path returns next's awaitable without an extra
        # await frame; a rejection still raises only when awaited.
        if key is None:

            def endpoint(ctx: Context, request: Req) -> Awaitable[Resp]:
                if allow(""):
                    return next(ctx, request)
                return failed(RateLimited("rate limit exceeded"))

            return keep_name(endpoint, next)

        key_of = key

        def keyed_endpoint(ctx: Context, request: Req) -> Awaitable[Resp]:
            if allow(key_of(ctx, request)):
                return next(ctx, request)
            return failed(RateLimited("rate limit exceeded"))

        return keep_name(keyed_endpoint, next)

    return middleware


def _delaying(waiter: Waiter, key: KeyFunc | None, sleep: Sleep) -> GenericMiddleware:
    """``rate_limit(wait=True)`` for a waiter that books ahead: sleep, then call."""
    reserve = waiter.reserve
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
                return failed(DeadlineExceeded("rate limit wait would outlast the deadline"))
            if delay <= 0.0:
                return next(ctx, request)
            return delayed(delay, name, next, ctx, request)

        return keep_name(endpoint, next)

    return middleware


def _waiting_itself(waiter: AsyncWaiter, key: KeyFunc | None) -> GenericMiddleware:
    """``rate_limit(wait=True)`` for a waiter that waits itself (awaited before every call)."""
    acquire = waiter.acquire

    def middleware(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        async def endpoint(ctx: Context, request: Req) -> Resp:
            await acquire("" if key is None else key(ctx, request), ctx.time_remaining())
            return await next(ctx, request)

        return keep_name(endpoint, next)

    return middleware
