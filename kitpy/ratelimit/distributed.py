"""A rate limit shared by many processes through Redis, on the ``limits`` library.

:class:`RedisRateLimiter` is an :class:`~kitpy.ratelimit.AsyncAllower`: every
process that builds one with the same Redis, ``limit`` and ``namespace`` shares
one budget per key, counted atomically by ``limits``' async Redis storage
(moving window by default: exact; ``"fixed-window"`` and ``"sliding-window"`` are
cheaper).  Use it with :func:`~kitpy.ratelimit.erroring_limiter`::

    limiter = RedisRateLimiter.from_url("redis://10.0.0.5:6379", "100/second")
    limited = erroring_limiter(limiter, key=lambda ctx, req: ctx[PEER])(endpoint)
    ...
    await limiter.aclose()

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
from collections.abc import Callable
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
            if self._on_error is not None:
                self._on_error(exc)
            return self._fail_open

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
