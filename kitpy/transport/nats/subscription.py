"""Subscribing a Server to a subject, with bounded concurrency and a graceful drain.

nats-py runs one subscription's callbacks one after another.  A
:class:`Subscription` runs each message in its own task instead, at most
``max_in_flight`` at once: when that many are running, it stops taking
messages (nats-py buffers them, up to its pending limits) until one finishes.
:meth:`Subscription.drain` stops receiving, lets the handlers in flight finish
within ``grace`` seconds (their replies are sent), and cancels the rest.
"""

from __future__ import annotations

import asyncio
from typing import Any

import nats.aio.client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription

from .server import Server

__all__ = ["Subscription"]


class Subscription:
    """A :class:`~kitpy.transport.nats.Server` receiving on one subject.

    ``queue`` puts it in a queue group: each message goes to one member.

    Example::

        sub = await Subscription.start(nc, "stringsvc.uppercase", server, queue="stringsvc")
        ...
        await sub.drain(grace=10.0)
    """

    def __init__(self, sub: NatsSubscription, slots: asyncio.Semaphore) -> None:
        self._sub = sub
        self._slots = slots
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    async def start(
        cls,
        nc: nats.aio.client.Client,
        subject: str,
        server: Server[Any, Any],
        *,
        queue: str = "",
        max_in_flight: int = 64,
    ) -> Subscription:
        """Subscribe ``server`` to ``subject`` on ``nc``."""
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be >= 1")
        handle = server.handler(nc)
        slots = asyncio.Semaphore(max_in_flight)
        tasks: set[asyncio.Task[None]] = set()

        def finished(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            slots.release()

        async def receive(msg: Msg) -> None:
            await slots.acquire()
            task = asyncio.create_task(handle(msg))
            tasks.add(task)
            task.add_done_callback(finished)

        sub = await nc.subscribe(subject, queue=queue, cb=receive)
        subscription = cls(sub, slots)
        subscription._tasks = tasks
        return subscription

    @property
    def in_flight(self) -> int:
        """Messages being handled right now."""
        return len(self._tasks)

    async def drain(self, *, grace: float = 10.0) -> None:
        """Stop receiving; wait up to ``grace`` s for handlers in flight, then cancel the rest."""
        await self._sub.unsubscribe()
        pending = set(self._tasks)
        if pending:
            _, late = await asyncio.wait(pending, timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=1.0)
