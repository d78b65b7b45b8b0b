"""Event-loop lag: how long ready work waits before it runs, as an overload signal.

An asyncio server under more load than its CPU can take does not queue
requests where a limiter can see them: each connection's data waits in the
event loop's ready queue, and a request's handler starts late by about one
loop iteration.  :class:`LoopLag` measures that wait with a probe that sleeps
``interval`` and records how late it woke, and reports ``overloaded`` while the
*smallest* of the last ``window`` samples is over ``max_lag`` -- a standing
queue, in the manner of CoDel, not one slow callback or a garbage collection.

Give it to a :class:`~kitpy.ratelimit.ConcurrencyLimiter` (``lag=``): while the
loop is overloaded, new calls are shed at once with 503 / UNAVAILABLE and
``Retry-After``, and the ones admitted start within about ``max_lag``::

    async with LoopLag(max_lag=0.1) as lag:
        limiter = ConcurrencyLimiter(256, max_waiting=256, lag=lag)
        ...
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from types import TracebackType

from kitpy.context import Clock

__all__ = ["LoopLag"]


class LoopLag:
    """A probe of the running event loop's lag; ``overloaded`` while it stays over ``max_lag``.

    ``value`` is the smallest lag (seconds) of the last ``window`` samples,
    taken every ``interval`` seconds.  Start it with ``async with`` (or
    :meth:`start` / :meth:`stop`) in the loop it measures.

    Example::

        async with LoopLag(max_lag=0.1, interval=0.05) as lag:
            ...
            if lag.overloaded:
                ...  # shed
    """

    __slots__ = ("_clock", "_samples", "_task", "interval", "max_lag", "overloaded", "value")

    def __init__(
        self,
        *,
        max_lag: float = 0.1,
        interval: float = 0.05,
        window: int = 4,
        clock: Clock = time.monotonic,
    ) -> None:
        if max_lag <= 0 or interval <= 0 or window < 1:
            raise ValueError("max_lag and interval must be > 0 and window >= 1")
        self.max_lag = max_lag
        self.interval = interval
        self.value = 0.0
        self.overloaded = False
        self._samples: deque[float] = deque(maxlen=window)
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    def record(self, lag: float) -> None:
        """Take one sample (the probe calls this; a test may too)."""
        self._samples.append(max(0.0, lag))
        self.value = min(self._samples)
        self.overloaded = self.value > self.max_lag and len(self._samples) == self._samples.maxlen

    def start(self) -> None:
        """Start probing in the running loop (idempotent)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._probe())

    async def stop(self) -> None:
        """Stop probing; the last values stay readable."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])  # a cancel of this stop() itself still propagates

    async def _probe(self) -> None:
        clock, interval = self._clock, self.interval
        while True:
            expected = clock() + interval
            await asyncio.sleep(interval)
            self.record(clock() - expected)

    async def __aenter__(self) -> LoopLag:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __repr__(self) -> str:
        return (
            f"LoopLag(value={self.value:.4f}, max_lag={self.max_lag}, overloaded={self.overloaded})"
        )
