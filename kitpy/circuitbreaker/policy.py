"""When does a closed breaker trip?  Two policies, each a config plus a per-breaker tracker.

* :class:`ConsecutiveFailures` -- trip after ``n`` failures in a row (a success resets).
* :class:`FailureRate` -- trip when at least ``threshold`` of the calls in the last
  ``window`` seconds failed, once at least ``min_calls`` were made.

A policy object is immutable configuration; the breaker asks it for a fresh
:class:`FailureTracker` (bound to the breaker's clock), so one policy can serve
many breakers.  Write your own by implementing :class:`TripPolicy`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from kitpy.context import Clock
from kitpy.resilience.window import RollingCounter

__all__ = ["ConsecutiveFailures", "FailureRate", "FailureTracker", "TripPolicy"]


class FailureTracker(Protocol):
    """Per-breaker counting state: told of each outcome in the closed state."""

    def success(self) -> None:
        """A call succeeded (or failed in a way that does not count)."""

    def failure(self) -> bool:
        """A call failed; return True to trip the breaker open."""
        ...

    def reset(self) -> None:
        """Forget everything (called whenever the breaker closes)."""


class TripPolicy(Protocol):
    """Configuration that makes a :class:`FailureTracker` for one breaker."""

    def tracker(self, clock: Clock) -> FailureTracker:
        """A fresh tracker measuring time on ``clock``."""
        ...


@dataclass(frozen=True, slots=True)
class ConsecutiveFailures:
    """Trip after ``n`` consecutive failures."""

    n: int = 5

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("n must be at least 1")

    def tracker(self, clock: Clock) -> FailureTracker:
        return _ConsecutiveTracker(self.n)


class _ConsecutiveTracker:
    __slots__ = ("_count", "_n")

    def __init__(self, n: int) -> None:
        self._n = n
        self._count = 0

    def success(self) -> None:
        self._count = 0

    def failure(self) -> bool:
        self._count += 1
        return self._count >= self._n

    def reset(self) -> None:
        self._count = 0


@dataclass(frozen=True, slots=True)
class FailureRate:
    """Trip when ``failures / calls >= threshold`` over the last ``window`` seconds.

    Nothing trips until ``min_calls`` calls landed in the window, so one early
    failure cannot open the breaker.
    """

    threshold: float = 0.5
    window: float = 10.0
    min_calls: int = 20
    slots: int = 10

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1:
            raise ValueError("threshold must be in (0, 1]")
        if self.min_calls < 1:
            raise ValueError("min_calls must be at least 1")

    def tracker(self, clock: Clock) -> FailureTracker:
        return _RateTracker(self, clock)


class _RateTracker:
    __slots__ = ("_calls", "_clock", "_failures", "_min_calls", "_threshold")

    def __init__(self, policy: FailureRate, clock: Clock) -> None:
        self._threshold = policy.threshold
        self._min_calls = policy.min_calls
        self._clock = clock
        self._calls = RollingCounter(window=policy.window, slots=policy.slots)
        self._failures = RollingCounter(window=policy.window, slots=policy.slots)

    def success(self) -> None:
        self._calls.add(self._clock())

    def failure(self) -> bool:
        now = self._clock()
        self._calls.add(now)
        self._failures.add(now)
        calls = self._calls.total(now)
        return calls >= self._min_calls and self._failures.total(now) >= self._threshold * calls

    def reset(self) -> None:
        self._calls.reset()
        self._failures.reset()
