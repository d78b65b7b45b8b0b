"""AMQP under a broker restart: the consumer reconnects and every persistent message is handled."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika

from kitpy import Context
from kitpy.transport.amqp import DELIVERIES, Consumer, Publisher, Server
from tests.conftest import RabbitMQ


async def test_a_broker_restart_mid_stream_loses_no_persistent_message(
    rabbitmq_server: RabbitMQ,
) -> None:
    total = 200
    handled: dict[str, list[int]] = {}
    release = asyncio.Event()

    async def slow(ctx: Context, body: str) -> None:
        if len(handled) >= 50:
            await release.wait()  # the rest waits for the restart
        handled.setdefault(body, []).append(ctx[DELIVERIES])

    connection = await aio_pika.connect_robust(
        rabbitmq_server.url, timeout=10, reconnect_interval=0.5
    )
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(f"faults.{uuid.uuid4().hex}", durable=True)
        publish: Publisher[str] = Publisher(channel, queue.name, lambda ctx, s: s.encode())
        for i in range(total):
            await publish(Context(), f"m{i}")
        server = Server(slow, lambda ctx, m: m.body.decode(), lambda ctx, r: b"")
        consumer = await Consumer.start(channel, queue, server, prefetch=8)
        for _ in range(500):
            if len(handled) >= 50:
                break
            await asyncio.sleep(0.02)
        await asyncio.to_thread(rabbitmq_server.stop)  # unacked deliveries go back to the queue
        release.set()
        await asyncio.to_thread(rabbitmq_server.start)
        for _ in range(1500):  # the robust connection restores channel, queue and consumer
            if len(handled) == total:
                break
            await asyncio.sleep(0.02)
        await consumer.drain(grace=2)
    finally:
        await connection.close()
    assert sorted(handled) == sorted(f"m{i}" for i in range(total))
    again = {body: d for body, d in handled.items() if len(d) > 1}
    assert all(max(d) > 1 for d in again.values())  # handled twice only as a redelivery
