"""Rate and concurrency limits for endpoints, in-process and Redis-shared.

* :func:`rate_limit` -- ``rate_limit(limiter)`` rejects the excess at once with
  :class:`~kitpy.errors.RateLimited` (429); ``rate_limit(limiter, wait=True)``
  waits for a permit, never past the Context deadline
  (:class:`~kitpy.errors.DeadlineExceeded` at once when it would).
* :class:`TokenBucket` -- rate + burst, serves both modes; :class:`KeyedTokenBuckets` --
  one per key with an LRU bound on the number of keys.
* :func:`concurrency_limit` + :class:`ConcurrencyLimiter` -- a bulkhead: at most
  ``n`` calls in flight, the excess shed or queued within the deadline and
  ``max_wait``; with a :class:`LoopLag`, everything new is shed while the event
  loop is overloaded.
* ``kitpy.ratelimit.distributed.RedisRateLimiter`` -- one limit shared by many
  processes through Redis (needs ``kitpy[redis]``), fail-open or fail-closed.

Example::

    limited = chain(
        concurrency_limit(64, max_waiting=128),
        rate_limit(TokenBucket(rate=100.0, burst=20)),
    )(endpoint)
"""

from kitpy.ratelimit.bucket import KeyedTokenBuckets, TokenBucket
from kitpy.ratelimit.concurrency import Admission, ConcurrencyLimiter, concurrency_limit
from kitpy.ratelimit.looplag import LoopLag
from kitpy.ratelimit.middleware import (
    Allower,
    AsyncAllower,
    AsyncLimiter,
    AsyncWaiter,
    KeyFunc,
    Limiter,
    Waiter,
    rate_limit,
)

__all__ = [
    "Admission",
    "Allower",
    "AsyncAllower",
    "AsyncLimiter",
    "AsyncWaiter",
    "ConcurrencyLimiter",
    "KeyFunc",
    "KeyedTokenBuckets",
    "Limiter",
    "LoopLag",
    "TokenBucket",
    "Waiter",
    "concurrency_limit",
    "rate_limit",
]
