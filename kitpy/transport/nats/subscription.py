"""Subscribing a Server to a subject, with bounded concurrency and a graceful drain.

nats-py runs one subscription's callbacks one after another.  A
:class:`Subscription` hands each message to one of ``max_in_flight`` worker
tasks instead, so that many handlers run at once; when all are busy and as
many messages again wait for them, it stops taking messages (nats-py buffers
them, up to its pending limits) until a worker is free.  A fixed pool costs
less per message than a task per message (measured in docs/decisions.md).
:meth:`Subscription.drain` stops receiving, lets the handlers in flight finish
within ``grace`` seconds (their replies are sent), and cancels the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
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

    def __init__(self, workers: list[asyncio.Task[None]], inbox: asyncio.Queue[Msg]) -> None:
        self._sub: NatsSubscription | None = None
        self._workers = workers
        self._inbox = inbox
        self._busy = 0

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
        inbox: asyncio.Queue[Msg] = asyncio.Queue(maxsize=max_in_flight)
        subscription = cls([], inbox)
        handle = server.handler(nc)
        subscription._workers = [
            asyncio.create_task(subscription._work(handle), name=f"nats {subject} worker")
            for _ in range(max_in_flight)
        ]
        subscription._sub = await nc.subscribe(subject, queue=queue, cb=inbox.put)
        return subscription

    async def _work(self, handle: Any) -> None:
        while True:
            msg = await self._inbox.get()
            self._busy += 1
            try:
                await handle(msg)
            finally:
                self._busy -= 1
                self._inbox.task_done()

    @property
    def in_flight(self) -> int:
        """Messages being handled or waiting for a worker right now."""
        return self._busy + self._inbox.qsize()

    async def drain(self, *, grace: float = 10.0) -> None:
        """Stop receiving; wait up to ``grace`` s for handlers in flight, then cancel the rest."""
        if self._sub is not None:
            with contextlib.suppress(nats.errors.Error):
                await self._sub.unsubscribe()
            self._sub = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._inbox.join()
        for worker in self._workers:
            worker.cancel()
        await asyncio.wait(self._workers, timeout=2.0)
