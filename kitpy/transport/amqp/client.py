"""The AMQP client side: a remote endpoint over request-reply, or a confirmed publish.

:class:`Client` is an :class:`~kitpy.endpoint.Endpoint` that publishes a
request with ``reply_to`` (an exclusive reply queue the Client declares on
first use) and a ``correlation_id``, and waits for the reply within the
Context's deadline (``timeout`` when there is none), on the one call path of
:class:`~kitpy.transport.messaging.MessageClient`.  The remaining time
travels in ``X-Timeout-Ms`` and as the message's ``expiration``, so a request
nobody picks up in time expires in the queue instead of running late.  A reply
with ``Kit-Code`` is raised as the same :class:`~kitpy.errors.KitError`
subclass the handler raised; a request no queue takes is UNAVAILABLE.
:class:`Publisher` publishes and returns once the broker confirmed it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage, AbstractQueue

from kitpy.context import Context
from kitpy.errors import DeadlineExceeded
from kitpy.transport.messaging.client import (
    ClientAfter,
    ClientBefore,
    ClientFinalizer,
    DecodeResponse,
    EncodeRequest,
    MessageClient,
    read_reply,
)

from .publish import confirmed_publish
from .server import text_headers

__all__ = ["Client", "ClientAfter", "Publisher"]

Req = TypeVar("Req")
Resp = TypeVar("Resp")


class _Target:
    """An exchange found by name on first use ("" is the default exchange)."""

    def __init__(self, channel: AbstractChannel, name: str) -> None:
        self._channel = channel
        self._name = name
        self._exchange: AbstractExchange | None = None

    async def get(self) -> AbstractExchange:
        if self._exchange is None:
            if self._name:
                self._exchange = await self._channel.get_exchange(self._name, ensure=False)
            else:
                self._exchange = self._channel.default_exchange
        return self._exchange


class Client(MessageClient[Req, Resp]):
    """A remote endpoint reached by AMQP request-reply (see the module docstring).

    Example::

        uppercase = Client(channel, "stringsvc.uppercase", encode_upper, decode_v)
        await uppercase(Context().with_timeout(0.5), UppercaseRequest(s="hi"))
    """

    def __init__(
        self,
        channel: AbstractChannel,
        routing_key: str,
        encode_request: EncodeRequest[Req],
        decode_response: DecodeResponse[Resp],
        *,
        exchange: str = "",
        timeout: float = 5.0,
        before: Sequence[ClientBefore] = (),
        after: Sequence[ClientAfter] = (),
        finalizer: Sequence[ClientFinalizer] = (),
    ) -> None:
        super().__init__(
            encode_request, timeout=timeout, sends_deadline=True, before=before, finalizer=finalizer
        )
        self._channel = channel
        self.routing_key = routing_key
        self._target = _Target(channel, exchange)
        self._decode = decode_response
        self._after = tuple(after)
        self._replies: AbstractQueue | None = None
        self._opening = asyncio.Lock()
        self._waiting: dict[str, asyncio.Future[AbstractIncomingMessage]] = {}

    async def _reply_queue(self) -> AbstractQueue:
        async with self._opening:
            if self._replies is None:
                queue = await self._channel.declare_queue(exclusive=True, auto_delete=True)
                await queue.consume(self._on_reply, no_ack=True)
                self._replies = queue
        return self._replies

    async def _on_reply(self, msg: AbstractIncomingMessage) -> None:
        waiter = self._waiting.pop(msg.correlation_id or "", None)
        if waiter is not None and not waiter.done():
            waiter.set_result(msg)

    async def send(
        self, ctx: Context, headers: dict[str, str], payload: bytes, within: float
    ) -> Resp:
        """Publish the request with ``reply_to`` and wait for the reply that correlates."""
        correlation = uuid.uuid4().hex
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[correlation] = waiter
        try:
            async with asyncio.timeout(within):
                replies = await self._reply_queue()
                message = aio_pika.Message(
                    payload, headers=dict[str, Any](headers), reply_to=replies.name,
                    correlation_id=correlation, expiration=within,
                )  # fmt: skip
                await confirmed_publish(await self._target.get(), message, self.routing_key)
                reply = await waiter
        except TimeoutError:
            raise DeadlineExceeded(f"no reply for {self.routing_key} in time") from None
        finally:
            self._waiting.pop(correlation, None)
        headers_in = text_headers(reply.headers)
        return read_reply(ctx, headers_in, reply.body, after=self._after, decode=self._decode)


class Publisher(MessageClient[Req, None]):
    """An endpoint that publishes ``request`` and returns None once the broker confirmed it.

    Example::

        publish = Publisher(channel, "stringsvc.events.uppercased", encode, exchange="events")
        await publish(ctx, Uppercased(s="hi", v="HI"))
    """

    def __init__(
        self,
        channel: AbstractChannel,
        routing_key: str,
        encode_request: EncodeRequest[Req],
        *,
        exchange: str = "",
        timeout: float = 5.0,
        persistent: bool = True,
        before: Sequence[ClientBefore] = (),
        finalizer: Sequence[ClientFinalizer] = (),
    ) -> None:
        super().__init__(
            encode_request,
            timeout=timeout,
            sends_deadline=False,
            before=before,
            finalizer=finalizer,
        )
        self.routing_key = routing_key
        self._target = _Target(channel, exchange)
        self._mode = aio_pika.DeliveryMode.PERSISTENT if persistent else None

    async def send(
        self, ctx: Context, headers: dict[str, str], payload: bytes, within: float
    ) -> None:
        """Publish and wait for the broker's confirm."""
        message = aio_pika.Message(
            payload, headers=dict[str, Any](headers), delivery_mode=self._mode
        )
        try:
            async with asyncio.timeout(within):
                await confirmed_publish(await self._target.get(), message, self.routing_key)
        except TimeoutError:
            late = f"publish to {self.routing_key} not confirmed in time"
            raise DeadlineExceeded(late) from None
