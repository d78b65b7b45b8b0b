"""In-process token buckets: one shared bucket, or one per key with bounded memory.

A :class:`TokenBucket` refills at ``rate`` tokens per second up to ``burst``.
``allow()`` takes a token if there is one (for :func:`~kitpy.ratelimit.rate_limit`);
``reserve(max_wait)`` takes one now or books the next one, returning how long to
wait, unless that wait would exceed ``max_wait`` (for ``rate_limit(..., wait=True)``),
and ``refund()`` gives a booked token back when its caller is cancelled while
waiting.  A check costs a few hundred
nanoseconds: one clock read and a little float arithmetic, no allocation.

:class:`KeyedTokenBuckets` keeps one bucket per key (caller, tenant, peer) in an
LRU of at most ``max_keys`` buckets; the least recently used is forgotten first
(a forgotten key starts again with a full burst).

Both take their ``rate`` and ``burst`` as numbers or as live settings
(:class:`~kitpy.config.Live`): a new value is applied through
:meth:`TokenBucket.configure`, so the check itself still reads plain attributes.
A :class:`TokenBucket`'s rate may also be unlimited (``None``, e.g. an unset
live setting, or ``math.inf``), and its burst may follow the rate (``burst=None``).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from typing import cast

from kitpy.config.live import Live, follow
from kitpy.context import Clock

__all__ = ["KeyedTokenBuckets", "TokenBucket"]


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; starts full.

    A rate of ``None`` or ``math.inf`` is *unlimited*: every call passes, at the
    cost of one attribute read.  A live rate of type ``float | None`` switches
    between the two at run time -- an operator lifts the limit by unsetting the
    setting and puts it back by setting it; the bucket starts full each time it
    becomes limited.  ``burst=None`` is one second's worth of tokens, the rate
    rounded up (at least 1), and follows a live rate.

    Example::

        bucket = TokenBucket(rate=100.0, burst=20)
        limited = rate_limit(bucket)(endpoint)

        live_rate = Live(100.0, name="rate")       # changed at run time by a config source
        bucket = TokenBucket(rate=live_rate, burst=20)

        optional = Live(None, name="rate_limit", type=float | None)
        bucket = TokenBucket(optional, burst=None)  # unlimited until rate_limit is set;
        optional.set("5")                           # then 5 a second, 5 at once
    """

    __slots__ = (
        "__weakref__",
        "_burst",
        "_burst_is_rate",
        "_clock",
        "_last",
        "_rate",
        "_tokens",
        "_unlimited",
    )

    def __init__(
        self,
        rate: float | Live[float] | Live[float | None] | None,
        burst: int | Live[int] | None = 1,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self._clock = clock
        self._last = clock()
        self._rate = self._burst = self._tokens = 1.0
        self._unlimited = False
        self._burst_is_rate = burst is None
        # A Live[float] is read exactly as a Live[float | None] is: only its values are used.
        rate_now = follow(cast("float | Live[float | None] | None", rate), self._set_rate)
        burst_now = None if burst is None else follow(burst, self._set_burst)
        self.configure(rate=math.inf if rate_now is None else rate_now, burst=burst_now)
        self._tokens = self._burst

    def _set_rate(self, rate: float | None) -> None:
        self.configure(rate=math.inf if rate is None else rate)

    def _set_burst(self, burst: int) -> None:
        self.configure(burst=burst)

    def configure(self, *, rate: float | None = None, burst: int | None = None) -> None:
        """Change the rate and/or burst now; tokens already saved stay (up to the new burst).

        ``rate=math.inf`` lifts the limit; a finite rate after that starts the
        bucket full.  With ``burst=None`` given to the constructor, a new rate
        brings its own burst (the rate rounded up).
        """
        if rate is not None and not rate > 0:
            raise ValueError("rate must be positive")
        if burst is not None and burst < 1:
            raise ValueError("burst must be at least 1")
        now = self._clock()
        was_unlimited = self._unlimited
        if not was_unlimited:
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if rate is not None:
            self._unlimited = rate == math.inf
            if not self._unlimited:
                self._rate = float(rate)
                if self._burst_is_rate and burst is None:
                    burst = max(1, math.ceil(rate))
        if burst is not None:
            self._burst = float(burst)
            self._tokens = min(self._tokens, self._burst)
        if was_unlimited and not self._unlimited:
            self._tokens = self._burst

    @property
    def rate(self) -> float:
        """Tokens added per second; ``math.inf`` when unlimited."""
        return math.inf if self._unlimited else self._rate

    @property
    def burst(self) -> int:
        """The most tokens the bucket holds."""
        return int(self._burst)

    def tokens(self) -> float:
        """Tokens available now (negative while booked ahead by :meth:`reserve`)."""
        if self._unlimited:
            return math.inf
        now = self._clock()
        return min(self._burst, self._tokens + (now - self._last) * self._rate)

    def allow(self, key: str = "", /) -> bool:
        """Take a token if one is available; ``key`` is ignored (one shared bucket)."""
        if self._unlimited:
            return True
        now = self._clock()
        tokens = self._tokens + (now - self._last) * self._rate
        if tokens > self._burst:
            tokens = self._burst
        self._last = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        return False

    def reserve(self, key: str = "", max_wait: float | None = None, /) -> float | None:
        """Take a token now (0.0) or book the next free one and return the wait in seconds.

        Returns None and takes nothing when the wait would reach ``max_wait``.
        """
        if self._unlimited:
            return 0.0
        now = self._clock()
        tokens = self._tokens + (now - self._last) * self._rate
        if tokens > self._burst:
            tokens = self._burst
        self._last = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return 0.0
        wait = (1.0 - tokens) / self._rate
        if max_wait is not None and wait >= max_wait:
            self._tokens = tokens
            return None
        self._tokens = tokens - 1.0
        return wait

    def refund(self, key: str = "", /) -> None:
        """Give back one token booked by :meth:`reserve` whose caller stopped waiting.

        Callers booked behind it move up: the next token is free that much sooner.
        The bucket never holds more than ``burst``.
        """
        tokens = self._tokens + 1.0
        self._tokens = tokens if tokens < self._burst else self._burst

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self.rate:g}, burst={int(self._burst)})"


class KeyedTokenBuckets:
    """One :class:`TokenBucket` per key, at most ``max_keys`` remembered (LRU).

    Use with a key function on the limiter middleware::

        per_user = KeyedTokenBuckets(rate=5.0, burst=10, max_keys=50_000)
        limited = rate_limit(per_user, key=lambda ctx, req: ctx[CLAIMS]["sub"])(ep)
    """

    __slots__ = ("__weakref__", "_buckets", "_burst", "_clock", "_max_keys", "_rate")

    def __init__(
        self,
        rate: float | Live[float],
        burst: int | Live[int] = 1,
        *,
        max_keys: int = 10_000,
        clock: Clock = time.monotonic,
    ) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._rate = 1.0
        self._burst = 1
        self.configure(rate=follow(rate, self._set_rate), burst=follow(burst, self._set_burst))

    def _set_rate(self, rate: float) -> None:
        self.configure(rate=rate)

    def _set_burst(self, burst: int) -> None:
        self.configure(burst=burst)

    def configure(self, *, rate: float | None = None, burst: int | None = None) -> None:
        """Change the rate and/or burst of every bucket, and of those made from now on."""
        TokenBucket(rate or self._rate, burst or self._burst, clock=self._clock)  # validate
        if rate is not None:
            self._rate = rate
        if burst is not None:
            self._burst = burst
        for bucket in self._buckets.values():
            bucket.configure(rate=rate, burst=burst)

    def __len__(self) -> int:
        return len(self._buckets)

    def bucket(self, key: str) -> TokenBucket:
        """The bucket for ``key``, created (and the oldest evicted) as needed."""
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self._rate, self._burst, clock=self._clock)
            buckets[key] = bucket
            if len(buckets) > self._max_keys:
                buckets.popitem(last=False)
        else:
            buckets.move_to_end(key)
        return bucket

    def allow(self, key: str = "", /) -> bool:
        """Take a token from ``key``'s bucket if it has one."""
        return self.bucket(key).allow()

    def reserve(self, key: str = "", max_wait: float | None = None, /) -> float | None:
        """As :meth:`TokenBucket.reserve`, on ``key``'s bucket."""
        return self.bucket(key).reserve("", max_wait)

    def refund(self, key: str = "", /) -> None:
        """As :meth:`TokenBucket.refund`, on ``key``'s bucket (if it is still remembered)."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.refund()
