"""A rate limit shared by many processes through Redis, on the ``limits`` library.

:class:`RedisRateLimiter` is an :class:`~kitpy.ratelimit.AsyncAllower`: every
process that builds one with the same Redis, ``limit`` and ``namespace`` shares
one budget per key, counted atomically by ``limits``' async Redis storage
(moving window by default: exact; ``"fixed-window"`` and ``"sliding-window"`` are
cheaper).  Use it with :func:`~kitpy.ratelimit.rate_limit`::

    limiter = RedisRateLimiter.from_url("redis://10.0.0.5:6379", "100/second")
    limited = rate_limit(limiter, key=lambda ctx, req: ctx[PEER])(endpoint)
    ...
    await limiter.aclose()

It is also an :class:`~kitpy.ratelimit.AsyncWaiter` (:meth:`RedisRateLimiter.acquire`),
so ``rate_limit(limiter, wait=True)`` can make callers across the fleet
wait their turn instead of being refused.

When Redis is unreachable, slow (past ``timeout``) or errors, the outcome is your
choice: ``fail_open=True`` admits the call (availability over the limit), the
default ``fail_open=False`` refuses it (the limit over availability; the caller
gets ``RateLimited``).  ``on_error`` is told of every such storage error, e.g.
to log or count it.
"""

from __future__ import annotations

from kitpy._extras import require

require("limits", "redis", extra="redis")

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import limits
import redis.asyncio
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)

from kitpy.errors import DeadlineExceeded, RateLimited

__all__ = ["RedisRateLimiter", "Strategy"]

Strategy = Literal["moving-window", "fixed-window", "sliding-window"]

_STRATEGIES: dict[str, Callable[[Any], RateLimiter]] = {
    "moving-window": MovingWindowRateLimiter,
    "fixed-window": FixedWindowRateLimiter,
    "sliding-window": SlidingWindowCounterRateLimiter,
}


class RedisRateLimiter:
    """A distributed limit: ``limit`` (e.g. ``"100/second"``) per key across all processes.

    ``storage`` is any ``limits.aio.storage.Storage`` (usually built by
    :meth:`from_url`).  Keys are namespaced, so several limiters can share one Redis.
    ``sleep`` and ``rng`` (the jitter of :meth:`acquire`) are injectable for tests.
    """

    def __init__(
        self,
        storage: Storage,
        limit: str | limits.RateLimitItem,
        *,
        strategy: Strategy = "moving-window",
        namespace: str = "kitpy",
        fail_open: bool = False,
        timeout: float = 0.5,
        on_error: Callable[[BaseException], None] | None = None,
        pool: redis.asyncio.ConnectionPool | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if strategy not in _STRATEGIES:
            raise ValueError(f"strategy must be one of {sorted(_STRATEGIES)}, not {strategy!r}")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._item = limits.parse(limit) if isinstance(limit, str) else limit
        self._limiter = _STRATEGIES[strategy](storage)
        self._namespace = namespace
        self._fail_open = fail_open
        self._timeout = timeout
        self._on_error = on_error
        self._pool = pool
        self._sleep = sleep
        self._random = (rng or random.Random()).random

    @classmethod
    def from_url(
        cls,
        url: str,
        limit: str | limits.RateLimitItem,
        *,
        strategy: Strategy = "moving-window",
        namespace: str = "kitpy",
        fail_open: bool = False,
        timeout: float = 0.5,
        on_error: Callable[[BaseException], None] | None = None,
        max_connections: int = 50,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> RedisRateLimiter:
        """Connect to ``url`` (``redis://host:port/db``) through redis-py's asyncio client.

        Connections are made lazily, on the first call; :meth:`aclose` closes them.
        """
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        url = url.removeprefix("async+")
        pool = redis.asyncio.ConnectionPool.from_url(
            url,
            max_connections=max_connections,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
        )
        storage = RedisStorage(
            "async+" + url,
            implementation="redispy",
            wrap_exceptions=True,
            connection_pool=pool,  # type: ignore[arg-type]  # passed through to redis-py
        )
        return cls(
            storage,
            limit,
            strategy=strategy,
            namespace=namespace,
            fail_open=fail_open,
            timeout=timeout,
            on_error=on_error,
            pool=pool,
            sleep=sleep,
            rng=rng,
        )

    @property
    def fail_open(self) -> bool:
        """True when calls are admitted while Redis cannot be reached."""
        return self._fail_open

    async def allow(self, key: str = "", /) -> bool:
        """Count one hit for ``key``; False when over the limit (or Redis fails, fail-closed)."""
        try:
            async with asyncio.timeout(self._timeout):
                return await self._limiter.hit(self._item, self._namespace, key)
        except Exception as exc:
            return self._storage_failed(exc)

    def _storage_failed(self, exc: Exception) -> bool:
        """Report a storage error to ``on_error``; True to admit the call (fail open)."""
        if self._on_error is not None:
            self._on_error(exc)
        return self._fail_open

    async def acquire(self, key: str = "", max_wait: float | None = None, /) -> None:
        """Take a permit for ``key``, waiting for one if none is left (the delaying mode).

        When the limit is reached it asks Redis when the window next frees a
        permit, sleeps until then (plus up to 10% jitter, at most 50 ms, so the
        processes that wait do not all retry at once) and tries again.  It raises
        ``DeadlineExceeded`` at once, taking nothing, when the next permit is
        ``max_wait`` seconds or more away (``rate_limit(..., wait=True)``
        passes the Context's remaining time).  On a storage error it returns
        (fail open) or raises ``RateLimited`` (fail closed).  Unlike an in-process
        bucket it books nothing ahead: waiters race for each freed permit, and one
        that loses waits for the next, never past ``max_wait``.

        Example::

            smoothed = rate_limit(RedisRateLimiter.from_url(url, "50/second"), wait=True)(client)
        """
        deadline = None if max_wait is None else time.monotonic() + max_wait
        item, namespace, limiter = self._item, self._namespace, self._limiter
        while True:
            try:
                async with asyncio.timeout(self._timeout):
                    if await limiter.hit(item, namespace, key):
                        return
                    stats = await limiter.get_window_stats(item, namespace, key)
            except Exception as exc:
                if self._storage_failed(exc):
                    return
                raise RateLimited("rate limit unavailable (storage error)") from None
            wait = max(0.001, stats.reset_time - time.time())  # limits counts in epoch seconds
            sleep = wait + min(0.05, wait * 0.1) * self._random()
            if deadline is not None:
                left = deadline - time.monotonic()
                if wait >= left:
                    raise DeadlineExceeded("rate limit wait would outlast the deadline")
                sleep = min(sleep, left)
            await self._sleep(sleep)

    async def remaining(self, key: str = "") -> int:
        """Hits left for ``key`` in the current window (raises if Redis fails)."""
        stats = await self._limiter.get_window_stats(self._item, self._namespace, key)
        return stats.remaining

    async def clear(self, key: str = "") -> None:
        """Forget ``key``'s hits (raises if Redis fails)."""
        await self._limiter.clear(self._item, self._namespace, key)

    async def aclose(self) -> None:
        """Close the connections opened by :meth:`from_url` (no-op for a given storage)."""
        if self._pool is not None:
            await self._pool.disconnect()
