"""When does a closed breaker trip?  Two policies, each a config plus a per-breaker tracker.

* :class:`ConsecutiveFailures` -- trip after ``n`` failures in a row (a success resets).
* :class:`FailureRate` -- trip when at least ``threshold`` of the calls in the last
  ``window`` seconds failed, once at least ``min_calls`` were made.

A policy object is immutable configuration; the breaker asks it for a fresh
:class:`FailureTracker` (bound to the breaker's clock), so one policy can serve
many breakers.  Write your own by implementing :class:`TripPolicy`.

The thresholds (``n``; ``threshold`` and ``min_calls``) may be live settings
(:class:`~kitpy.config.Live`): every tracker follows a change at once, and a
value out of range is rejected by the setting, which keeps the old one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from kitpy.config.live import Live, follow
from kitpy.context import Clock
from kitpy.window import RollingCounter

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

    n: int | Live[int] = 5

    def __post_init__(self) -> None:
        _check_n(self.n.value if isinstance(self.n, Live) else self.n)

    def tracker(self, clock: Clock) -> FailureTracker:
        return _ConsecutiveTracker(self.n)


def _check_n(n: int) -> None:
    if n < 1:
        raise ValueError("n must be at least 1")


def _check_threshold(threshold: float) -> None:
    if not 0 < threshold <= 1:
        raise ValueError("threshold must be in (0, 1]")


def _check_min_calls(min_calls: int) -> None:
    if min_calls < 1:
        raise ValueError("min_calls must be at least 1")


class _ConsecutiveTracker:
    __slots__ = ("__weakref__", "_count", "_n")

    def __init__(self, n: int | Live[int]) -> None:
        self._n = follow(n, self._set_n)
        self._count = 0

    def _set_n(self, n: int) -> None:
        _check_n(n)
        self._n = n

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

    threshold: float | Live[float] = 0.5
    window: float = 10.0
    min_calls: int | Live[int] = 20
    slots: int = 10

    def __post_init__(self) -> None:
        t, m = self.threshold, self.min_calls
        _check_threshold(t.value if isinstance(t, Live) else t)
        _check_min_calls(m.value if isinstance(m, Live) else m)

    def tracker(self, clock: Clock) -> FailureTracker:
        return _RateTracker(self, clock)


class _RateTracker:
    __slots__ = ("__weakref__", "_calls", "_clock", "_failures", "_min_calls", "_threshold")

    def __init__(self, policy: FailureRate, clock: Clock) -> None:
        self._threshold = follow(policy.threshold, self._set_threshold)
        self._min_calls = follow(policy.min_calls, self._set_min_calls)
        self._clock = clock
        self._calls = RollingCounter(window=policy.window, slots=policy.slots)
        self._failures = RollingCounter(window=policy.window, slots=policy.slots)

    def _set_threshold(self, threshold: float) -> None:
        _check_threshold(threshold)
        self._threshold = threshold

    def _set_min_calls(self, min_calls: int) -> None:
        _check_min_calls(min_calls)
        self._min_calls = min_calls

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
