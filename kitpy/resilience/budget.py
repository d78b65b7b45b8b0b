"""A retry budget: retries allowed as a fraction of recent requests, plus a small floor.

The idea comes from Finagle and tower: every request *deposits* into the budget,
every retry *withdraws* from it, and a retry is allowed only while

    retries_in_window + 1 <= ratio * requests_in_window + min_per_second * window

So with the defaults (20 % over 10 s, floor 10 retries/s) a dependency that fails
every call receives at most ~1.2x the original load, instead of ``max_attempts``
times it, while a quiet service can still retry its occasional failure.
Share one budget between the retry middlewares in front of the same dependency.
"""

from __future__ import annotations

import math
import time

from kitpy.context import Clock
from kitpy.window import RollingCounter

__all__ = ["RetryBudget"]


class RetryBudget:
    """Allows retries as ``ratio`` of the requests seen in the last ``window`` seconds.

    ``min_per_second`` is the floor: that many retries per second of window are
    always allowed, whatever the traffic.  ``clock`` is any monotonic clock (a
    :class:`~kitpy.testing.FakeClock` in tests).

    Example::

        budget = RetryBudget(ratio=0.1, min_per_second=1.0)
        client = retry(max_attempts=3, budget=budget)(client)
    """

    __slots__ = ("_clock", "_floor", "_ratio", "_requests", "_retries")

    def __init__(
        self,
        *,
        ratio: float = 0.2,
        min_per_second: float = 10.0,
        window: float = 10.0,
        clock: Clock = time.monotonic,
    ) -> None:
        if ratio < 0 or not math.isfinite(ratio):
            raise ValueError("ratio must be a finite number >= 0")
        if min_per_second < 0:
            raise ValueError("min_per_second must be >= 0")
        self._ratio = ratio
        self._floor = min_per_second * window
        self._clock = clock
        self._requests = RollingCounter(window=window)
        self._retries = RollingCounter(window=window)

    @property
    def ratio(self) -> float:
        """Retries allowed per request in the window."""
        return self._ratio

    @property
    def floor(self) -> float:
        """Retries always allowed per window (``min_per_second * window``)."""
        return self._floor

    def deposit(self) -> None:
        """Record one original request (call once per request, not per attempt)."""
        self._requests.add(self._clock())

    def try_withdraw(self) -> bool:
        """Take one retry from the budget; False (and nothing taken) when it is spent."""
        now = self._clock()
        allowed = self._ratio * self._requests.total(now) + self._floor
        if self._retries.total(now) + 1 > allowed:
            return False
        self._retries.add(now)
        return True

    def remaining(self) -> float:
        """How many retries the budget would allow right now."""
        now = self._clock()
        allowed = self._ratio * self._requests.total(now) + self._floor
        return max(0.0, allowed - self._retries.total(now))
