"""Consuming a queue with a Server: manual acks, prefetch as the bound, retries, dead letters.

:class:`Consumer` feeds a :class:`~kitpy.transport.amqp.Server` from a queue
the application declared, at most ``prefetch`` messages at once (the
channel's QoS), and settles each outcome:

* a request (it has ``reply_to``) -> the reply (or the error, with
  ``Kit-Code``) is published to ``reply_to`` with its ``correlation_id``,
  then the request is acked;
* success -> **ack**;
* a client fault (INVALID_ARGUMENT, NOT_FOUND, ...) or a passed deadline ->
  **dead-lettered** at once, never retried;
* anything else -> **retried**: a copy with ``Kit-Deliveries`` + 1 goes to the
  back of the queue (confirmed by the broker) and the original is acked, until
  ``max_deliver`` deliveries; then the message is dead-lettered.

Dead-lettering publishes the original body and headers plus ``Kit-Code``,
``Kit-Error``, ``Kit-Queue`` and ``Kit-Deliveries`` to ``dead_letter_exchange``
(confirmed, ``mandatory``), then acks; without one the message is rejected
without requeue, so the queue's own ``x-dead-letter-exchange`` (if any) takes
it.  A copy or dead letter the broker does not confirm leaves the original
un-acked and requeued: nothing is lost.  :meth:`Consumer.drain` stops the
deliveries, lets handlers in flight finish within ``grace`` (and settles
them), and requeues the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from kitpy.context import Context
from kitpy.errors import Code, is_client_fault
from kitpy.transport.messaging.server import DELIVERIES, Outcome

from .publish import confirmed_publish
from .server import DELIVERIES_HEADER, Server

__all__ = ["Consumer"]


class Consumer:
    """A Server consuming one queue (see the module docstring).

    Example::

        queue = await channel.declare_queue("stringsvc.uppercase", durable=True)
        consumer = await Consumer.start(channel, queue, server, dead_letter_exchange="dead")
        ...
        await consumer.drain(grace=10.0)
    """

    def __init__(
        self,
        channel: AbstractChannel,
        queue: AbstractQueue,
        server: Server[Any, Any],
        *,
        max_deliver: int,
        dead_letter_exchange: str | None,
    ) -> None:
        self._channel = channel
        self._queue = queue
        self._server = server
        self._max_deliver = max_deliver
        self._dead_letter_exchange = dead_letter_exchange
        self._tasks: set[asyncio.Task[Any]] = set()
        self._tag: str | None = None

    @classmethod
    async def start(
        cls,
        channel: AbstractChannel,
        queue: AbstractQueue,
        server: Server[Any, Any],
        *,
        prefetch: int = 16,
        max_deliver: int = 5,
        dead_letter_exchange: str | None = None,
    ) -> Consumer:
        """Start consuming ``queue`` on ``channel`` (a channel with publisher confirms)."""
        if prefetch < 1 or max_deliver < 1:
            raise ValueError("need prefetch >= 1 and max_deliver >= 1")
        await channel.set_qos(prefetch_count=prefetch)
        consumer = cls(
            channel, queue, server,
            max_deliver=max_deliver, dead_letter_exchange=dead_letter_exchange,
        )  # fmt: skip
        consumer._tag = await queue.consume(consumer._receive, no_ack=False)
        return consumer

    @property
    def in_flight(self) -> int:
        """Messages being handled right now."""
        return len(self._tasks)

    async def _receive(self, msg: AbstractIncomingMessage) -> None:
        # aio-pika runs each delivery's callback in a task of its own: handle it there (a
        # third task per message cost ~4% of the consumer's throughput), and know it by it
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._server.serve(msg, self._settle)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(msg.nack(requeue=True))  # stopped mid-handler: requeue
            raise
        finally:
            self._tasks.discard(task)

    async def _settle(self, msg: AbstractIncomingMessage, ctx: Context, outcome: Outcome) -> None:
        try:
            await self._settle_or_raise(msg, ctx, outcome)
        except BaseException:
            with contextlib.suppress(Exception):
                await msg.nack(requeue=True)  # not settled: give it back rather than lose it
            raise

    async def _settle_or_raise(
        self, msg: AbstractIncomingMessage, ctx: Context, outcome: Outcome
    ) -> None:
        err = outcome.error
        if msg.reply_to:
            headers: dict[str, Any] = dict(outcome.headers)
            reply = aio_pika.Message(
                outcome.body, headers=headers, correlation_id=msg.correlation_id
            )
            await confirmed_publish(self._channel.default_exchange, reply, msg.reply_to)
        elif err is not None:
            deliveries = ctx.get(DELIVERIES, 1)
            final = is_client_fault(err.code) or err.code is Code.DEADLINE_EXCEEDED
            if not final and deliveries < self._max_deliver:
                await self._retry(msg, deliveries)
            elif self._dead_letter_exchange is not None:
                await self._dead_letter(msg, outcome, deliveries, self._dead_letter_exchange)
            else:
                await msg.reject(requeue=False)
                return
        await msg.ack()

    async def _retry(self, msg: AbstractIncomingMessage, deliveries: int) -> None:
        headers = {**(msg.headers or {}), DELIVERIES_HEADER: str(deliveries + 1)}
        copy = aio_pika.Message(
            msg.body, headers=headers, content_type=msg.content_type,
            delivery_mode=msg.delivery_mode, correlation_id=msg.correlation_id,
        )  # fmt: skip
        await confirmed_publish(self._channel.default_exchange, copy, self._queue.name)

    async def _dead_letter(
        self, msg: AbstractIncomingMessage, outcome: Outcome, deliveries: int, exchange_name: str
    ) -> None:
        assert outcome.error is not None
        headers: dict[str, Any] = {
            **(msg.headers or {}),
            **outcome.headers,
            "Kit-Error": outcome.error.message[:500],
            "Kit-Queue": self._queue.name,
            DELIVERIES_HEADER: str(deliveries),
        }
        exchange = await self._channel.get_exchange(exchange_name, ensure=False)
        letter = aio_pika.Message(
            msg.body, headers=headers, content_type=msg.content_type,
            delivery_mode=msg.delivery_mode,
        )  # fmt: skip
        await confirmed_publish(exchange, letter, msg.routing_key or self._queue.name)

    async def drain(self, *, grace: float = 10.0) -> None:
        """Stop deliveries; let handlers finish within ``grace`` s; requeue the rest."""
        if self._tag is not None:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._tag)
            self._tag = None
        late: set[asyncio.Task[Any]] = set()
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=2.0)
