"""JetStream on a real nats-server -js: ack, terminate + dead letter, nak + redelivery, drain."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import nats
import nats.aio.client
import pytest
from nats.aio.msg import Msg
from nats.js.api import ConsumerInfo
from nats.js.client import JetStreamContext

from kitpy import Context, DeadlineExceeded, InvalidArgument, Unavailable
from kitpy.errors import Code
from kitpy.transport.nats import (
    DELIVERIES,
    JetStreamConsumer,
    JetStreamPublisher,
    Server,
)
from tests.conftest import Nats


@dataclass
class Stream:
    js: JetStreamContext
    name: str
    subject: str
    dead: str


@dataclass
class Handled:
    calls: list[tuple[str, int]] = field(default_factory=list)
    codes: list[Code] = field(default_factory=list)


def encode(ctx: Context, value: str) -> bytes:
    return json.dumps({"s": value}).encode()


def decode(ctx: Context, msg: Msg) -> str:
    value = json.loads(msg.data)["s"]
    if not isinstance(value, str):
        raise TypeError("s must be a string")
    return value


@pytest.fixture
async def nc(nats_server: Nats) -> AsyncIterator[nats.aio.client.Client]:
    conn = await nats.connect(nats_server.url, connect_timeout=2, allow_reconnect=False)
    yield conn
    await conn.close()


@pytest.fixture
async def stream(nc: nats.aio.client.Client) -> AsyncIterator[Stream]:
    js = nc.jetstream()
    tag = uuid.uuid4().hex[:12]
    name, subject, dead = f"T{tag}", f"jobs.{tag}", f"dead.{tag}"
    await js.add_stream(name=name, subjects=[subject])
    await js.add_stream(name=f"D{tag}", subjects=[dead])
    yield Stream(js, name, subject, dead)
    await js.delete_stream(name)
    await js.delete_stream(f"D{tag}")


def server(handled: Handled, behaviour: Callable[[str, int], object]) -> Server[str, object]:
    async def endpoint(ctx: Context, value: str) -> object:
        deliveries = ctx[DELIVERIES]
        handled.calls.append((value, deliveries))
        result = behaviour(value, deliveries)
        if asyncio.iscoroutine(result):
            return await result
        return result

    return Server(
        endpoint, decode, lambda ctx, r: b"",
        finalizer=[lambda ctx, code: handled.codes.append(code)],
    )  # fmt: skip


async def _until(condition: Callable[[], bool], within: float = 10.0) -> None:
    for _ in range(int(within / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not true within {within} s")


async def _settled(stream: Stream, durable: str) -> ConsumerInfo:
    """The consumer's info once the server has processed every ack (acks are not awaited)."""
    for _ in range(250):
        info: ConsumerInfo = await stream.js.consumer_info(stream.name, durable)
        if info.num_ack_pending == 0:
            return info
        await asyncio.sleep(0.02)
    raise AssertionError(f"{durable}: {info.num_ack_pending} messages still unacked")


async def _dead_letters(stream: Stream, count: int) -> list[Msg]:
    sub = await stream.js.pull_subscribe(stream.dead, durable=f"dl{uuid.uuid4().hex[:8]}")
    msgs = await sub.fetch(batch=count, timeout=5)
    for msg in msgs:
        await msg.ack()
    return msgs


async def test_success_is_acked_and_the_publisher_waits_for_the_stream(stream: Stream) -> None:
    handled = Handled()
    publish = JetStreamPublisher(stream.js, stream.subject, encode)
    acks = [await publish(Context(), f"m{i}") for i in range(5)]
    assert [a.seq for a in acks] == [1, 2, 3, 4, 5]
    consumer = await JetStreamConsumer.start(
        stream.js, stream.subject, server(handled, lambda v, n: v.upper()), durable="ok",
        fetch_timeout=0.2,
    )  # fmt: skip
    await _until(lambda: len(handled.codes) == 5)
    await consumer.drain(grace=2)
    info = await _settled(stream, "ok")
    assert info.num_pending == 0  # all acked: nothing will come back
    assert sorted(handled.calls) == [(f"m{i}", 1) for i in range(5)]


async def test_a_subject_no_stream_stores_is_unavailable(stream: Stream) -> None:
    publish = JetStreamPublisher(stream.js, f"nowhere.{uuid.uuid4().hex}", encode)
    with pytest.raises(Unavailable, match="no stream stores"):
        await publish(Context().with_timeout(2), "x")
    with pytest.raises(DeadlineExceeded):
        await publish(Context().with_timeout(0), "x")


async def test_client_faults_are_dead_lettered_and_terminated_at_once(stream: Stream) -> None:
    handled = Handled()

    def reject(value: str, deliveries: int) -> object:
        raise InvalidArgument(f"cannot use {value}")

    await stream.js.publish(
        stream.subject, encode(Context(), "bad"), headers={"X-Request-Id": "r1"}
    )
    await stream.js.publish(stream.subject, b'{"s": 7}')  # does not decode: INVALID_ARGUMENT too
    consumer = await JetStreamConsumer.start(
        stream.js, stream.subject, server(handled, reject), durable="faults",
        dead_letter=stream.dead, backoff=[0.05], fetch_timeout=0.2,
    )  # fmt: skip
    dead = await _dead_letters(stream, 2)
    await consumer.drain(grace=2)
    assert handled.codes == [Code.INVALID_ARGUMENT, Code.INVALID_ARGUMENT]
    assert handled.calls == [("bad", 1)]  # once: never retried
    first = dead[0].headers or {}
    assert first["Kit-Code"] == "INVALID_ARGUMENT"
    assert first["Kit-Error"] == "cannot use bad"
    assert first["Kit-Subject"] == stream.subject
    assert first["Kit-Deliveries"] == "1"
    assert first["X-Request-Id"] == "r1"
    assert dead[0].data == encode(Context(), "bad")  # the original body, to replay later
    assert "invalid message body" in (dead[1].headers or {})["Kit-Error"]


async def test_retryable_failures_are_redelivered_then_dead_lettered_after_max_deliver(
    stream: Stream,
) -> None:
    handled = Handled()

    def flaky(value: str, deliveries: int) -> object:
        if value == "recovers" and deliveries == 2:
            return "ok"
        raise Unavailable("database down")

    await stream.js.publish(stream.subject, encode(Context(), "recovers"))
    await stream.js.publish(stream.subject, encode(Context(), "never"))
    consumer = await JetStreamConsumer.start(
        stream.js, stream.subject, server(handled, flaky), durable="retry",
        dead_letter=stream.dead, max_deliver=3, backoff=[0.05, 0.1], fetch_timeout=0.2,
    )  # fmt: skip
    dead = await _dead_letters(stream, 1)
    await consumer.drain(grace=2)
    assert sorted(c for c in handled.calls if c[0] == "recovers") == [
        ("recovers", 1),
        ("recovers", 2),
    ]
    assert sorted(c for c in handled.calls if c[0] == "never") == [
        ("never", 1), ("never", 2), ("never", 3)
    ]  # fmt: skip
    assert (dead[0].headers or {})["Kit-Deliveries"] == "3"
    assert (dead[0].headers or {})["Kit-Code"] == "UNAVAILABLE"


async def test_a_long_handler_keeps_its_message_and_drain_finishes_it(stream: Stream) -> None:
    handled = Handled()
    started = asyncio.Event()

    async def slow(value: str, deliveries: int) -> str:
        started.set()
        await asyncio.sleep(2.5)  # longer than ack_wait: in_progress keeps it ours
        return value

    await stream.js.publish(stream.subject, encode(Context(), "long"))
    consumer = await JetStreamConsumer.start(
        stream.js, stream.subject, server(handled, lambda v, n: slow(v, n)), durable="long",
        ack_wait=1.0, fetch_timeout=0.2,
    )  # fmt: skip
    async with asyncio.timeout(5):
        await started.wait()
    await consumer.drain(grace=5)  # waits for the handler, which is then acked
    assert handled.calls == [("long", 1)]
    assert handled.codes == [Code.OK]
    info = await _settled(stream, "long")
    assert info.num_redelivered == 0


async def test_drain_past_grace_naks_so_another_consumer_gets_the_message(stream: Stream) -> None:
    first, second = Handled(), Handled()
    started = asyncio.Event()

    async def stuck(value: str, deliveries: int) -> str:
        started.set()
        await asyncio.sleep(30)
        return value

    await stream.js.publish(stream.subject, encode(Context(), "handover"))
    a = await JetStreamConsumer.start(
        stream.js, stream.subject, server(first, lambda v, n: stuck(v, n)), durable="shared",
        fetch_timeout=0.2,
    )  # fmt: skip
    async with asyncio.timeout(5):
        await started.wait()
    await a.drain(grace=0.1)
    b = await JetStreamConsumer.start(
        stream.js, stream.subject, server(second, lambda v, n: v), durable="shared",
        fetch_timeout=0.2,
    )  # fmt: skip
    await _until(lambda: second.codes == [Code.OK], within=5.0)
    await b.drain(grace=2)
    # handed over at once, not after ack_wait (30 s): the drain nak-ed it
    assert [value for value, _ in second.calls] == ["handover"]
    assert first.codes == [Code.CANCELLED]  # the first never finished it


@pytest.mark.parametrize(
    "reply",
    [
        "$JS.ACK.ORDERS.worker.3.17.12.1700000000000000000.4",  # v1: no domain
        "$JS.ACK._.ACCHASH.ORDERS.worker.3.17.12.1700000000000000000.4.rnd",  # v2
        "$JS.ACK.hub.ACCHASH.ORDERS.worker.3.17.12.1700000000000000000.4",  # v2, no token
    ],
)
def test_deliveries_read_from_every_ack_subject_shape_agree_with_nats_py(reply: str) -> None:
    async def echo(ctx: Context, s: str) -> str:
        return s

    msg = Msg(None, subject="orders.new", reply=reply, data=b"{}")  # type: ignore[arg-type]
    server = Server(echo, decode, encode)
    values = server.envelope(msg).values
    assert values[DELIVERIES] == msg.metadata.num_delivered == 3
