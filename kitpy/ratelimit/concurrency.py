"""Concurrency limit (bulkhead): at most ``max_in_flight`` calls at once.

It lives beside the rate limits: both bound the load an endpoint takes, one
per second, the other at once.

Excess calls are shed at once (``max_waiting=0``) with
:class:`~kitpy.errors.Unavailable` (HTTP 503, retryable on another instance) or,
with ``reject_code=Code.RESOURCE_EXHAUSTED``, :class:`~kitpy.errors.RateLimited`
(429).  With ``max_waiting > 0`` up to that many calls wait, first come first
served, for a slot -- but never past their Context deadline: one that would
raises :class:`~kitpy.errors.DeadlineExceeded` when the deadline comes, and a
call whose deadline already passed is not queued at all.

Queueing time is bounded too: with ``max_wait`` a call that has waited that
long for a slot is shed (the rejection, with ``Retry-After: 1``), so under a
flood the calls served keep a bounded latency and the rest are refused fast;
with ``lag`` (a :class:`~kitpy.ratelimit.LoopLag`) every new call is shed at
once while the event loop itself is overloaded -- where an asyncio server
queues most of its work, out of the limiter's sight.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Protocol

from kitpy.config.live import Live, follow
from kitpy.context import Context
from kitpy.endpoint import Endpoint, GenericMiddleware, Req, Resp, keep_name
from kitpy.errors import Code, DeadlineExceeded, KitError, from_code
from kitpy.ratelimit.looplag import LoopLag

__all__ = ["Admission", "ConcurrencyLimiter", "concurrency_limit"]


class Admission(Protocol):
    """What a Server's ``admission=`` takes: a slot per request, from headers to response.

    :class:`ConcurrencyLimiter` is one.  A Server calls :meth:`try_acquire`
    (no await: the common case), else awaits :meth:`acquire`, which may queue
    or raise the refusal; :meth:`release` once the response is ready.
    """

    def try_acquire(self) -> bool:
        """Take a slot without waiting, if one is free."""
        ...

    async def acquire(self, ctx: Context) -> None:
        """Take a slot, waiting if allowed; raise a ``KitError`` to refuse the request."""
        ...

    def release(self) -> None:
        """Give the slot back."""
        ...


class ConcurrencyLimiter:
    """The slot accounting behind :func:`concurrency_limit`; share one across endpoints.

    ``in_flight`` and ``waiting`` are readable (e.g. to export as gauges),
    ``shed`` counts the calls refused.  ``max_wait`` bounds the time a call
    queues for a slot (None: up to its deadline); ``lag`` sheds every new call
    while the event loop is overloaded (it is readable as ``lag``: an HTTP
    Server charges its value to a caller's deadline).  Rejections carry
    ``Retry-After: 1``.
    """

    __slots__ = (
        "__weakref__",
        "_lag",
        "_max_in_flight",
        "_max_wait",
        "_max_waiting",
        "_reject_code",
        "_waiters",
        "in_flight",
        "lag",
        "shed",
    )

    def __init__(
        self,
        max_in_flight: int | Live[int],
        *,
        max_waiting: int = 0,
        reject_code: Code = Code.UNAVAILABLE,
        max_wait: float | None = None,
        lag: LoopLag | None = None,
    ) -> None:
        if max_waiting < 0:
            raise ValueError("max_waiting must be >= 0")
        if max_wait is not None and max_wait <= 0:
            raise ValueError("max_wait must be > 0 seconds (or None)")
        self.in_flight = 0
        self.shed = 0
        self._max_wait = max_wait
        self._lag = lag if lag is not None else _NEVER_OVERLOADED
        self.lag = lag
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._max_in_flight = 1
        self.resize(follow(max_in_flight, self.resize))
        self._max_waiting = max_waiting
        self._reject_code = reject_code

    def resize(self, max_in_flight: int) -> None:
        """Change the limit now: more slots wake queued calls; fewer let calls in flight finish."""
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._max_in_flight = max_in_flight
        while self.in_flight < max_in_flight and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    @property
    def waiting(self) -> int:
        """Calls queued for a slot right now."""
        return sum(1 for w in self._waiters if not w.done())

    def try_acquire(self) -> bool:
        """Take a slot if one is free, nobody is queued ahead and the loop is not overloaded."""
        if self.in_flight < self._max_in_flight and not self._waiters and not self._lag.overloaded:
            self.in_flight += 1
            return True
        return False

    async def acquire(self, ctx: Context) -> None:
        """Take a slot, queueing if allowed; raise the rejection or ``DeadlineExceeded``."""
        if self.try_acquire():
            return
        if self._lag.overloaded:
            raise self._reject(
                f"overloaded: work waits over {self._lag.max_lag * 1000:.0f} ms to start"
            )
        if len(self._waiters) >= self._max_waiting:
            raise self._reject("too many concurrent requests")
        remaining = ctx.time_remaining()
        if remaining is not None and remaining <= 0:
            raise DeadlineExceeded("deadline passed while waiting for a concurrency slot")
        max_wait = self._max_wait
        waited_too_long = max_wait is not None and (remaining is None or max_wait < remaining)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        cm = asyncio.timeout(max_wait if waited_too_long else remaining)
        try:
            async with cm:
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot was handed to us as we gave up: pass it on
            else:
                waiter.cancel()
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError) and cm.expired():
                if waited_too_long:
                    raise self._reject(
                        f"overloaded: no concurrency slot within {max_wait:g} s"
                    ) from None
                raise DeadlineExceeded(
                    "deadline passed while waiting for a concurrency slot"
                ) from None
            raise

    def _reject(self, message: str) -> KitError:
        """The rejection for a shed call, counted, with ``Retry-After``."""
        self.shed += 1
        return from_code(self._reject_code, message, headers=_RETRY_AFTER)

    def release(self) -> None:
        """Free a slot: hand it to the first live waiter, or return it to the pool."""
        waiters = self._waiters
        while waiters and self.in_flight <= self._max_in_flight:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.in_flight -= 1


class _NeverOverloaded:
    """The ``lag`` of a limiter given none."""

    overloaded = False
    max_lag = 0.0


_NEVER_OVERLOADED: Any = _NeverOverloaded()
_RETRY_AFTER = {"Retry-After": "1"}


def concurrency_limit(
    max_in_flight: int | Live[int],
    *,
    max_waiting: int = 0,
    reject_code: Code = Code.UNAVAILABLE,
    limiter: ConcurrencyLimiter | None = None,
) -> GenericMiddleware:
    """Allow at most ``max_in_flight`` concurrent calls; shed or queue the rest.

    Pass ``limiter`` to share one pool of slots between several endpoints (its
    own limits then apply and the other numbers are ignored).  The wrapped
    endpoint keeps the inner one's name.

    Example::

        server_endpoint = concurrency_limit(64, max_waiting=128)(endpoint)
    """
    lim = limiter or ConcurrencyLimiter(
        max_in_flight, max_waiting=max_waiting, reject_code=reject_code
    )
    try_acquire = lim.try_acquire
    acquire = lim.acquire
    release = lim.release

    def middleware(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        async def endpoint(ctx: Context, request: Req) -> Resp:
            if not try_acquire():
                await acquire(ctx)
            try:
                return await next(ctx, request)
            finally:
                release()

        return keep_name(endpoint, next)

    return middleware
