"""Rate limiting for endpoints: erroring and delaying middleware, in-process and Redis-shared.

* :func:`erroring_limiter` -- reject at once with :class:`~kitpy.errors.RateLimited` (429).
* :func:`delaying_limiter` -- wait for a permit, never past the Context deadline
  (:class:`~kitpy.errors.DeadlineExceeded` at once when it would).
* :class:`TokenBucket` -- rate + burst, serves both; :class:`KeyedTokenBuckets` --
  one per key with an LRU bound on the number of keys.
* ``kitpy.ratelimit.distributed.RedisRateLimiter`` -- one limit shared by many
  processes through Redis (needs ``kitpy[redis]``), fail-open or fail-closed.

Example::

    limited = erroring_limiter(TokenBucket(rate=100.0, burst=20))(endpoint)
"""

from kitpy.ratelimit.bucket import KeyedTokenBuckets, TokenBucket
from kitpy.ratelimit.middleware import (
    Allower,
    AsyncAllower,
    AsyncWaiter,
    KeyFunc,
    Waiter,
    delaying_limiter,
    erroring_limiter,
)

__all__ = [
    "Allower",
    "AsyncAllower",
    "AsyncWaiter",
    "KeyFunc",
    "KeyedTokenBuckets",
    "TokenBucket",
    "Waiter",
    "delaying_limiter",
    "erroring_limiter",
]
