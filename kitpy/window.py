"""A counter over a rolling time window, split into slots (for budgets and failure rates).

Core, with no third-party imports: the circuit breaker's failure rate and the
retry budget both count on it, so it lives below both rather than in either.

``RollingCounter(window=10.0, slots=10)`` keeps one count per 1-second slot and
forgets a slot once it is older than the window, so :meth:`RollingCounter.total`
is the number of events in the last ``window`` seconds, give or take one slot.
Advancing costs O(1) per call, O(slots) at most when time jumps.
"""

from __future__ import annotations

__all__ = ["RollingCounter"]


class RollingCounter:
    """Counts events over the last ``window`` seconds of a caller-supplied clock reading.

    Example::

        counter = RollingCounter(window=10.0, slots=10)
        counter.add(now=clock())
        counter.total(now=clock())      # events in the last ~10 s
    """

    __slots__ = ("_counts", "_current", "_slots", "_sum", "_width")

    def __init__(self, *, window: float, slots: int = 10) -> None:
        if window <= 0:
            raise ValueError("window must be positive")
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self._width = window / slots
        self._slots = slots
        self._counts = [0] * slots
        self._current: int | None = None
        self._sum = 0

    def _advance(self, now: float) -> int:
        slot = int(now // self._width)
        current = self._current
        if slot != current:
            counts = self._counts
            if current is None or slot - current >= self._slots or slot < current:
                for i in range(self._slots):
                    counts[i] = 0
                self._sum = 0
            else:
                n = self._slots
                for s in range(current + 1, slot + 1):
                    i = s % n
                    self._sum -= counts[i]
                    counts[i] = 0
            self._current = slot
        return slot % self._slots

    def add(self, now: float, amount: int = 1) -> None:
        """Record ``amount`` events at time ``now``."""
        i = self._advance(now)
        self._counts[i] += amount
        self._sum += amount

    def total(self, now: float) -> int:
        """Events recorded in the window that ends at ``now``."""
        self._advance(now)
        return self._sum

    def reset(self) -> None:
        """Forget every event."""
        for i in range(self._slots):
            self._counts[i] = 0
        self._sum = 0
