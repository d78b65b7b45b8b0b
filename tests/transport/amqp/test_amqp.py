"""AMQP on a real RabbitMQ: request-reply, errors, retries, dead letters, drain."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aio_pika
import pytest
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from kitpy import (
    OPERATION,
    REQUEST_ID,
    Context,
    DeadlineExceeded,
    InvalidArgument,
    NotFound,
    Unavailable,
    Unknown,
)
from kitpy.errors import Code
from kitpy.transport.amqp import DELIVERIES, Client, Consumer, Publisher, Server
from tests.conftest import RabbitMQ


@dataclass
class Handled:
    calls: list[tuple[str, int]] = field(default_factory=list)
    codes: list[Code] = field(default_factory=list)


def decode(ctx: Context, msg: AbstractIncomingMessage) -> str:
    value = json.loads(msg.body)["s"]
    if not isinstance(value, str):
        raise TypeError("s must be a string")
    return value


def encode(ctx: Context, value: str) -> bytes:
    return json.dumps({"s": value}).encode()


def encode_v(ctx: Context, value: str) -> bytes:
    return json.dumps({"v": value}).encode()


def decode_v(ctx: Context, body: bytes) -> str:
    value = json.loads(body)["v"]
    assert isinstance(value, str)
    return value


def server(handled: Handled, behaviour: Callable[[str, int], str]) -> Server[str, str]:
    async def endpoint(ctx: Context, value: str) -> str:
        handled.calls.append((value, ctx[DELIVERIES]))
        if value == "slow":
            await asyncio.sleep(10)
        return behaviour(value, ctx[DELIVERIES])

    return Server(
        endpoint, decode, encode_v, finalizer=[lambda c, code: handled.codes.append(code)]
    )


def upper(value: str, deliveries: int) -> str:
    if not value:
        raise InvalidArgument("empty string")
    if value == "missing":
        raise NotFound("no such string")
    if value == "boom":
        raise RuntimeError("secret internals")
    return value.upper()


@pytest.fixture
async def connection(rabbitmq_server: RabbitMQ) -> AsyncIterator[AbstractRobustConnection]:
    conn = await aio_pika.connect_robust(rabbitmq_server.url, timeout=10)
    yield conn
    await conn.close()


@pytest.fixture
async def channel(connection: AbstractRobustConnection) -> AbstractChannel:
    return await connection.channel()


@pytest.fixture
async def queue(channel: AbstractChannel) -> AsyncIterator[AbstractQueue]:
    q = await channel.declare_queue(f"test.{uuid.uuid4().hex}", durable=True)
    yield q
    await q.delete(if_unused=False, if_empty=False)


async def _until(condition: Callable[[], bool], within: float = 10.0) -> None:
    for _ in range(int(within / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not true within {within} s")


async def test_request_reply_with_errors_deadlines_and_request_ids(
    connection: AbstractRobustConnection, queue: AbstractQueue
) -> None:
    served_channel = await connection.channel()
    seen: list[tuple[str, str]] = []

    async def endpoint(ctx: Context, value: str) -> str:
        seen.append((ctx[REQUEST_ID], ctx[OPERATION]))
        if value == "slow":
            await asyncio.sleep(10)
        return upper(value, 1)

    consumer = await Consumer.start(served_channel, queue, Server(endpoint, decode, encode_v))
    calling = await connection.channel()
    client = Client(calling, queue.name, encode, decode_v)
    ctx = Context().with_value(REQUEST_ID, "r-7").with_timeout(5)
    assert await client(ctx, "hello") == "HELLO"
    assert seen == [("r-7", queue.name)]
    with pytest.raises(InvalidArgument, match="empty string"):
        await client(ctx, "")
    with pytest.raises(NotFound):
        await client(ctx, "missing")
    with pytest.raises(Unknown) as unknown:
        await client(ctx, "boom")
    assert "secret" not in unknown.value.message
    with pytest.raises(DeadlineExceeded):
        await client(Context().with_timeout(0.3), "slow")
    with pytest.raises(Unavailable, match="no queue took"):
        await Client(calling, f"nobody.{uuid.uuid4().hex}", encode, decode_v)(ctx, "x")
    await consumer.drain(grace=0.5)


async def test_client_faults_are_dead_lettered_at_once_and_retryable_ones_after_max_deliver(
    channel: AbstractChannel, queue: AbstractQueue
) -> None:
    dead_exchange = await channel.declare_exchange(f"dead.{uuid.uuid4().hex}", "fanout")
    dead = await channel.declare_queue(exclusive=True)
    await dead.bind(dead_exchange)
    handled = Handled()

    def flaky(value: str, deliveries: int) -> str:
        if value == "bad":
            raise InvalidArgument("cannot use bad")
        if value == "recovers" and deliveries == 2:
            return "ok"
        raise Unavailable("database down")

    publish = Publisher(channel, queue.name, encode)
    for value in ("bad", "recovers", "never"):
        await publish(Context(), value)
    await channel.default_exchange.publish(
        aio_pika.Message(b'{"s": 1}'), queue.name
    )  # does not decode: INVALID_ARGUMENT
    consumer = await Consumer.start(
        channel, queue, server(handled, flaky), max_deliver=3,
        dead_letter_exchange=dead_exchange.name,
    )  # fmt: skip
    letters: list[AbstractIncomingMessage] = []

    async def collect(msg: AbstractIncomingMessage) -> None:
        letters.append(msg)

    await dead.consume(collect, no_ack=True)
    await _until(lambda: len(letters) == 3)
    await consumer.drain(grace=2)

    by_body = {json.loads(m.body)["s"]: m.headers for m in letters}
    assert by_body["bad"]["Kit-Code"] == "INVALID_ARGUMENT"
    assert by_body["bad"]["Kit-Deliveries"] == "1"
    assert by_body["bad"]["Kit-Queue"] == queue.name
    assert by_body["never"]["Kit-Code"] == "UNAVAILABLE"
    assert by_body["never"]["Kit-Deliveries"] == "3"
    assert by_body[1]["Kit-Code"] == "INVALID_ARGUMENT"
    assert sorted(c for c in handled.calls if c[0] == "never") == [
        ("never", 1), ("never", 2), ("never", 3)
    ]  # fmt: skip
    assert sorted(c for c in handled.calls if c[0] == "recovers") == [
        ("recovers", 1),
        ("recovers", 2),
    ]
    assert [c for c in handled.calls if c[0] == "bad"] == [("bad", 1)]


async def test_drain_finishes_in_flight_work_and_requeues_what_overruns(
    connection: AbstractRobustConnection, queue: AbstractQueue
) -> None:
    first_channel = await connection.channel()
    first = Handled()
    started = asyncio.Event()
    release = asyncio.Event()

    async def endpoint(ctx: Context, value: str) -> str:
        first.calls.append((value, ctx[DELIVERIES]))
        if value == "finishes":
            started.set()
            await release.wait()
        if value == "stuck":
            await asyncio.sleep(30)
        return value

    publish = Publisher(first_channel, queue.name, encode)
    await publish(Context(), "finishes")
    await publish(Context(), "stuck")
    consumer = await Consumer.start(first_channel, queue, Server(endpoint, decode, encode_v))
    async with asyncio.timeout(5):
        await started.wait()
    await _until(lambda: consumer.in_flight == 2)
    draining = asyncio.create_task(consumer.drain(grace=0.5))
    release.set()
    await draining

    second = Handled()
    other = await connection.channel()
    again = await Consumer.start(other, queue, server(second, lambda v, n: v))
    await _until(lambda: second.codes == [Code.OK])
    await again.drain(grace=1)
    assert [v for v, _ in second.calls] == ["stuck"]  # requeued, not lost
    assert second.calls[0][1] == 2  # and marked redelivered
    assert await queue.declare() is not None
    info = await other.declare_queue(queue.name, passive=True)
    assert info.declaration_result.message_count == 0  # "finishes" was acked
