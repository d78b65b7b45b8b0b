"""The lifecycle adapter for AMQP: consume a queue with a kitpy AMQP Server under a Lifecycle.

On the way out the consumer stops taking deliveries when the other servers
stop accepting, the handlers in flight get ``life.grace`` seconds (they are
settled: replied and acked), and the rest are requeued.  Close the connection
with ``life.close(connection)``: it is closed after every server has stopped.

Example::

    connection = life.close(await aio_pika.connect_robust(url))
    channel = await connection.channel()
    queue = await channel.declare_queue("stringsvc.uppercase", durable=True)
    await serve_amqp(life, channel, queue, server)
"""

from __future__ import annotations

import asyncio
from typing import Any

from kitpy._extras import require

require("aio_pika", extra="amqp")

from aio_pika.abc import AbstractChannel, AbstractQueue

from kitpy.lifecycle.core import Lifecycle
from kitpy.transport.amqp import Consumer, Server

__all__ = ["serve_amqp"]


class _AmqpConsumer:
    """A Consumer as the lifecycle stops it (see :class:`kitpy.lifecycle.Server`)."""

    def __init__(self, consumer: Consumer, grace: float) -> None:
        self._consumer = consumer
        self._grace = grace
        self._draining: asyncio.Task[None] | None = None

    async def set_not_serving(self) -> None:
        return None  # AMQP has no health check of its own: the HTTP and gRPC ones report

    async def stop_accepting(self) -> None:
        self._draining = asyncio.create_task(self._consumer.drain(grace=self._grace))
        await asyncio.sleep(0)

    async def finish(self) -> None:
        if self._draining is None:
            await self._consumer.drain(grace=self._grace)
        else:
            await self._draining


async def serve_amqp(
    life: Lifecycle,
    channel: AbstractChannel,
    queue: AbstractQueue,
    server: Server[Any, Any],
    **consumer_options: Any,
) -> Consumer:
    """Consume ``queue`` with ``server`` under ``life``; announce ``AMQP consuming <queue>``.

    ``consumer_options`` go to :meth:`kitpy.transport.amqp.Consumer.start`
    (``prefetch``, ``max_deliver``, ``dead_letter_exchange``).
    """
    consumer = await Consumer.start(channel, queue, server, **consumer_options)
    life.add(_AmqpConsumer(consumer, life.grace), f"AMQP consuming {queue.name}")
    return consumer
