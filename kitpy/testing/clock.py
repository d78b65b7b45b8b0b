"""A fake monotonic clock with a matching ``sleep``, for tests on virtual time.

Every time-dependent piece of kitpy takes a ``clock`` (``() -> float``) and,
where it waits, a ``sleep`` (``async (seconds) -> None``).  Pass a
:class:`FakeClock` for both and the test controls time: ``sleep`` advances the
clock at once instead of waiting, and :meth:`FakeClock.advance` moves it by hand.
"""

from __future__ import annotations

import asyncio

__all__ = ["FakeClock"]


class FakeClock:
    """Virtual monotonic time.

    Example::

        clock = FakeClock()
        ctx = Context(clock=clock).with_timeout(1.0)
        clock.advance(2.0)
        assert ctx.expired
        await clock.sleep(0.5)        # returns at once; clock.now grew by 0.5
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (must not be negative)."""
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go back")
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        """Record the sleep, advance time by it, and yield to the event loop once."""
        seconds = max(0.0, seconds)
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)
