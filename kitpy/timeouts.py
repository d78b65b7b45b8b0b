"""Timeouts for the hot path: one event-loop timer per tick, shared by every timeout due in it.

``asyncio.timeout`` puts a timer of its own on the event loop's heap for every
use and cancels it on the way out; cancelled timers stay in the heap until
their time comes.  A server that bounds each request by a 30 s deadline keeps
tens of thousands of dead timers there, and every push and pop compares them in
Python: measured on the gateway, ~17 us of CPU a request (6-8 % of it).

A :class:`TimeoutWheel` gives each timeout a slot that ends on a multiple of a
*tick*, and the loop one timer per slot; entering a timeout adds it to its
slot's set, leaving removes it, and when a slot's time comes the timeouts still
in it cancel their tasks.  A tick is a power of two near 1/64 of the delay
(at least 1/1024 s, at most 1 s), so a timeout fires never early and at most
~1.6 % of its delay late (~1 ms for delays up to 1/16 s, 1 s for delays beyond
64 s) -- while the timeouts of a busy server share a few timers a second.

A :class:`WheelTimeout` behaves as ``asyncio.timeout``'s context manager: the
task is cancelled when the time is up, the ``CancelledError`` becomes a
``TimeoutError`` at the ``async with``, only when the cancellation was the
timeout's own (a cancellation from elsewhere passes through), and
:meth:`WheelTimeout.expired` tells which happened.  ``None`` sets no timeout.

Entering and leaving never wait, so a :class:`WheelTimeout` is also a plain
context manager inside a coroutine (``with timeouts.timeout(2.5):``), which
spares the two coroutines of ``async with``.

Example::

    timeouts = TimeoutWheel()          # one per server, made once

    async def handle(request):
        with timeouts.timeout(2.5):
            return await work(request)
"""

from __future__ import annotations

import asyncio
import math
from types import TracebackType

__all__ = ["MAX_TICK", "MIN_TICK", "TimeoutWheel", "WheelTimeout"]

MIN_TICK = 2.0**-10
"""The finest tick, in seconds (~1 ms): the lateness bound of short timeouts."""
MAX_TICK = 1.0
"""The coarsest tick, in seconds: the lateness bound of timeouts over 64 s."""

_MIN_EXPONENT = math.frexp(MIN_TICK)[1] - 1
_MAX_EXPONENT = math.frexp(MAX_TICK)[1] - 1
_FINEST = 64 * MIN_TICK  # delays up to this take the finest tick

# a WheelTimeout's states (ints: compared on every request)
_CREATED, _ENTERED, _EXPIRING, _EXPIRED, _EXITED = range(5)

_Slot = set["WheelTimeout"]


def _slot_end(when: float, delay: float) -> float:
    """The end of the slot a timeout due at ``when`` (``delay`` from now) goes in."""
    if delay <= _FINEST:  # also a delay of 0 or less: due at once, ~1 ms late at most
        exponent = _MIN_EXPONENT
    else:  # 2**exponent <= delay / 64 < 2**(exponent + 1)
        exponent = min(math.frexp(delay * (1 / 64))[1] - 1, _MAX_EXPONENT)
    tick = math.ldexp(1.0, exponent)
    return math.ceil(when / tick) * tick


class TimeoutWheel:
    """Makes :class:`WheelTimeout` context managers whose timers are shared per tick.

    Make one per component (a server, a client) and use it from one event loop
    at a time; a wheel used from a new loop starts afresh there.

    Example::

        timeouts = TimeoutWheel()
        async with timeouts.timeout(0.5) as scope:
            await asyncio.sleep(1)      # TimeoutError after ~0.5 s
    """

    __slots__ = ("_loop", "_slots")

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: dict[float, _Slot] = {}

    def timeout(self, delay: float | None) -> WheelTimeout:
        """A context manager that cancels the block after ``delay`` seconds (None: never)."""
        return WheelTimeout(self, delay)

    @property
    def pending(self) -> int:
        """How many entered timeouts are still waiting (neither left nor expired)."""
        return sum(len(slot) for slot in self._slots.values())

    def _join(self, timeout: WheelTimeout, delay: float, loop: asyncio.AbstractEventLoop) -> _Slot:
        """Put ``timeout`` in the slot it ends in (its timer set when the slot is new)."""
        if loop is not self._loop:  # a new loop: the old one's slots stay with its timers
            self._loop, self._slots = loop, {}
        end = _slot_end(loop.time() + delay, delay)
        slot = self._slots.get(end)
        if slot is None:
            slot = self._slots[end] = set()
            loop.call_at(end, _expire, self._slots, end)
        slot.add(timeout)
        return slot

    def __repr__(self) -> str:
        return f"TimeoutWheel(pending={self.pending}, slots={len(self._slots)})"


def _expire(slots: dict[float, _Slot], end: float) -> None:
    """A slot's time has come: every timeout still in it cancels its task."""
    for timeout in slots.pop(end, ()):
        timeout._expire()


class WheelTimeout:
    """One use of a :class:`TimeoutWheel`: a context manager, as ``asyncio.timeout``'s.

    Use it with ``async with``, as ``asyncio.timeout``, or with a plain ``with``
    inside a coroutine: entering and leaving never wait, so the plain form does
    the same without two coroutines (~4 k instructions a use on hot paths).

    Example::

        scope = timeouts.timeout(0.2)
        try:
            async with scope:
                await call()
        except TimeoutError:
            if scope.expired():     # ours, not a TimeoutError raised by call()
                ...
    """

    __slots__ = ("_cancelling", "_delay", "_slot", "_state", "_task", "_wheel")

    def __init__(self, wheel: TimeoutWheel, delay: float | None) -> None:
        self._wheel = wheel
        self._delay = delay
        self._state = _CREATED
        self._task: asyncio.Task[object] | None = None
        self._slot: _Slot | None = None
        self._cancelling = 0

    def expired(self) -> bool:
        """Whether the time ran out (and the block was cancelled for it)."""
        return self._state == _EXPIRING or self._state == _EXPIRED

    def __enter__(self) -> WheelTimeout:
        if self._state != _CREATED:
            raise RuntimeError("a WheelTimeout can be entered once")
        self._state = _ENTERED
        if self._delay is not None:
            task = asyncio.current_task()
            if task is None:
                raise RuntimeError("a WheelTimeout must be used inside a task")
            self._task = task
            self._cancelling = task.cancelling()
            # the task's loop: asyncio.get_running_loop() would cost a getpid() system call
            self._slot = self._wheel._join(self, self._delay, task.get_loop())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        slot = self._slot
        if slot is not None:
            slot.discard(self)
            self._slot = None
        if self._state == _EXPIRING:
            self._state = _EXPIRED
            assert self._task is not None
            # ours only when no one else asked for a cancellation meanwhile
            if self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
                raise TimeoutError from exc
        else:
            self._state = _EXITED

    async def __aenter__(self) -> WheelTimeout:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, traceback)

    def _expire(self) -> None:
        if self._state == _ENTERED and self._task is not None:
            self._task.cancel()
            self._state = _EXPIRING
            self._slot = None

    def __repr__(self) -> str:
        names = ("created", "entered", "expiring", "expired", "exited")
        return f"<WheelTimeout {names[self._state]} delay={self._delay}>"
