"""Broker tracing: a consumer span continues the producer's trace over a real NATS and RabbitMQ."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aio_pika
import nats
import nats.aio.client
import pytest
from opentelemetry.trace import SpanKind

from kitpy import Context, Unavailable
from kitpy.testing import SpanRecorder
from kitpy.tracing import baggage as read_baggage
from kitpy.tracing import (
    call_tracing,
    message_client_before,
    message_server_before,
    message_server_finalizer,
    with_baggage,
)
from kitpy.transport import amqp
from kitpy.transport import nats as kit_nats
from tests.conftest import Nats, RabbitMQ


@pytest.fixture
async def nc(nats_server: Nats) -> AsyncIterator[nats.aio.client.Client]:
    conn = await nats.connect(nats_server.url, connect_timeout=2, allow_reconnect=False)
    yield conn
    await conn.close()


async def test_nats_request_reply_is_one_trace_with_baggage_and_error_status(
    nc: nats.aio.client.Client,
) -> None:
    spans = SpanRecorder()
    subject = f"trace.{uuid.uuid4().hex}"
    seen_baggage: list[str] = []

    async def echo(ctx: Context, body: bytes) -> bytes:
        seen_baggage.append(str(read_baggage(ctx).get("tenant")))
        if body == b"fail":
            raise Unavailable("down")
        return body

    server = kit_nats.Server(
        echo, lambda c, m: m.data, lambda c, r: r,
        before=[message_server_before(spans.tracer, kind=SpanKind.SERVER)],
        finalizer=[message_server_finalizer()],
    )  # fmt: skip
    sub = await kit_nats.Subscription.start(nc, subject, server)
    client = kit_nats.Client(
        nc, subject, lambda c, b: b, lambda c, b: b, before=[message_client_before()]
    )
    call = call_tracing(spans.tracer, name="call echo", kind=SpanKind.CLIENT)(client)
    ctx = with_baggage(Context(), "tenant", "acme").with_timeout(2)
    assert await call(ctx, b"hi") == b"hi"
    with pytest.raises(Unavailable):
        await call(ctx, b"fail")
    await sub.drain()

    clients = spans.named("call echo")
    servers = spans.named(subject)
    assert len(clients) == 2
    assert len(servers) == 2
    for client_span, server_span in zip(clients, servers, strict=True):
        assert server_span.parent is not None
        assert server_span.parent.span_id == client_span.context.span_id
        assert server_span.context.trace_id == client_span.context.trace_id
    assert servers[1].status.status_code.name == "ERROR"
    assert servers[1].attributes is not None
    assert servers[1].attributes["kitpy.code"] == "UNAVAILABLE"
    assert seen_baggage == ["acme", "acme"]


async def test_an_amqp_consumer_continues_the_publishers_trace(rabbitmq_server: RabbitMQ) -> None:
    spans = SpanRecorder()
    connection = await aio_pika.connect_robust(rabbitmq_server.url, timeout=10)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(f"trace.{uuid.uuid4().hex}", auto_delete=True)
        done = asyncio.Event()

        async def consume(ctx: Context, body: bytes) -> None:
            done.set()

        server = amqp.Server(
            consume, lambda c, m: m.body, lambda c, r: b"",
            before=[message_server_before(spans.tracer)],
            finalizer=[message_server_finalizer()],
        )  # fmt: skip
        consumer = await amqp.Consumer.start(channel, queue, server)
        publish = amqp.Publisher(
            channel, queue.name, lambda c, b: b, before=[message_client_before()]
        )
        produce = call_tracing(spans.tracer, name="publish", kind=SpanKind.PRODUCER)(publish)
        await produce(Context(), b"event")
        async with asyncio.timeout(10):
            await done.wait()
        await consumer.drain(grace=2)
    finally:
        await connection.close()
    producer = spans.one("publish")
    for _ in range(100):  # the finalizer ends the consumer span after the handler returns
        if spans.named(queue.name):
            break
        await asyncio.sleep(0.01)
    consumer_span = spans.one(queue.name)
    assert consumer_span.kind is SpanKind.CONSUMER
    assert consumer_span.parent is not None
    assert consumer_span.parent.span_id == producer.context.span_id
