"""The :class:`Instancer` contract and :class:`Publisher`, the fan-out every backend uses.

An Instancer is a source of the current set of instances of one service.
Subscribers iterate it: each :class:`Event` is either the *full* current set
or an error (the backend lost its registry; the last set may be stale).
Because every event is a full set, a slow subscriber only ever needs the
latest one, so :class:`Publisher` keeps one event, not a queue: memory stays
flat however many subscribers there are and however fast the registry churns.

A backend (etcd watch, DNS poll, a Consul blocking query, a static list)
owns a Publisher, calls :meth:`Publisher.update` / :meth:`Publisher.fail`
from its own task, and hands out :meth:`Publisher.subscribe`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Protocol, Self

from kitpy.sd.instance import Instance

__all__ = ["BackgroundInstancer", "Event", "Instancer", "Publisher"]


@dataclass(frozen=True, slots=True)
class Event:
    """One update from an Instancer: the full instance set, or an error.

    ``instances`` is sorted by (priority, address) and has no duplicates.  When
    ``error`` is set, ``instances`` is empty and the subscriber decides whether
    to keep using what it had (an :class:`~kitpy.sd.Endpointer` does, for a
    while).
    """

    instances: tuple[Instance, ...] = ()
    error: BaseException | None = None


class Instancer(Protocol):
    """A source of the current instances of one service.

    ``subscribe()`` returns an async iterator that yields the current state at
    once if one is known, then every change.  Any number of subscribers may
    iterate at the same time; each sees the latest event (intermediate events
    that arrive while it is busy may be skipped, never reordered).  Iteration
    ends when the instancer is closed.
    """

    def subscribe(self) -> AsyncIterator[Event]: ...


def _order(instances: Iterable[Instance]) -> tuple[Instance, ...]:
    return tuple(sorted(set(instances), key=lambda i: (i.priority, i.address, i.zone, i.weight)))


class Publisher:
    """Holds the latest :class:`Event` and wakes every subscriber when it changes.

    It is itself an :class:`Instancer`, which makes it the simplest instancer a
    test can drive by hand::

        pub = Publisher()
        endpointer = Endpointer(pub, factory)
        pub.update([Instance("a:1"), Instance("b:1")])
        pub.fail(ConnectionError("registry down"))
    """

    def __init__(self) -> None:
        self._event: Event | None = None
        self._version = 0
        self._closed = False
        self._changed = asyncio.Event()

    @property
    def latest(self) -> Event | None:
        """The most recent event, or None before the first one."""
        return self._event

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def update(self, instances: Iterable[Instance]) -> None:
        """Publish a full instance set (a no-op when it equals the current set)."""
        event = Event(_order(instances))
        last = self._event
        if last is not None and last.error is None and last.instances == event.instances:
            return
        self._publish(event)

    def fail(self, error: BaseException) -> None:
        """Publish an error: the backend cannot currently tell what the set is."""
        self._publish(Event((), error))

    def close(self) -> None:
        """End every subscription (after it has seen the latest event)."""
        self._closed = True
        self._wake()

    def _publish(self, event: Event) -> None:
        if self._closed:
            return
        self._event = event
        self._version += 1
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def subscribe(self) -> AsyncGenerator[Event, None]:
        """Yield the current event (if any), then each newer one, until closed."""
        seen = 0
        while True:
            while seen == self._version:
                if self._closed:
                    return
                await self._changed.wait()
            seen = self._version
            event = self._event
            assert event is not None  # a version > 0 means an event was published
            yield event


class BackgroundInstancer:
    """Base of the instancers fed by one background task (a watch loop, a poll loop).

    A subclass implements :meth:`_run`, which keeps ``self._publisher`` up to
    date until cancelled; this class starts it on the first :meth:`subscribe`
    (or :meth:`start`, or ``async with``) and stops it on :meth:`close`.
    """

    def __init__(self) -> None:
        self._publisher = Publisher()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        raise NotImplementedError

    async def subscribe(self) -> AsyncIterator[Event]:
        """Yield the current instance set (once known), then every change or error."""
        self.start()
        async with contextlib.aclosing(self._publisher.subscribe()) as events:
            async for event in events:
                yield event

    def start(self) -> None:
        """Begin following the registry (needs a running event loop; idempotent)."""
        if self._task is None and not self._publisher.closed:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Stop following the registry and end every subscription."""
        self._publisher.close()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
