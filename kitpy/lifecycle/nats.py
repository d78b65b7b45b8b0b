"""The lifecycle adapter for NATS: serve a kitpy NATS Server on a subject under a Lifecycle.

On the way out the subscription stops taking messages when the other servers
stop accepting, and the handlers in flight get ``life.grace`` seconds (their
replies are still sent).  Close the connection with ``life.close(nc)``: it is
closed after every server has stopped.

Example::

    nc = life.close(await nats.connect(url))
    await serve_nats(life, nc, "stringsvc.uppercase", server, queue="stringsvc")
"""

from __future__ import annotations

import asyncio
from typing import Any

from kitpy._extras import require

require("nats", extra="nats")

import nats.aio.client

from kitpy.lifecycle.core import Lifecycle
from kitpy.transport.nats import Server, Subscription

__all__ = ["serve_nats"]


class _NatsSubscription:
    """A Subscription as the lifecycle stops it (see :class:`kitpy.lifecycle.Server`)."""

    def __init__(self, subscription: Subscription, grace: float) -> None:
        self._subscription = subscription
        self._grace = grace
        self._draining: asyncio.Task[None] | None = None

    async def set_not_serving(self) -> None:
        return None  # NATS has no health check of its own: the HTTP and gRPC ones report

    async def stop_accepting(self) -> None:
        # the drain unsubscribes at once, then waits for the handlers in flight
        self._draining = asyncio.create_task(self._subscription.drain(grace=self._grace))
        await asyncio.sleep(0)

    async def finish(self) -> None:
        if self._draining is None:
            await self._subscription.drain(grace=self._grace)
        else:
            await self._draining


async def serve_nats(
    life: Lifecycle,
    nc: nats.aio.client.Client,
    subject: str,
    server: Server[Any, Any],
    *,
    queue: str = "",
    max_in_flight: int = 64,
) -> Subscription:
    """Subscribe ``server`` to ``subject`` under ``life``; announce ``NATS serving <subject>``."""
    subscription = await Subscription.start(
        nc, subject, server, queue=queue, max_in_flight=max_in_flight
    )
    where = f" in queue group {queue}" if queue else ""
    life.add(_NatsSubscription(subscription, life.grace), f"NATS serving {subject}{where}")
    return subscription
