"""stringsvc with --amqp: Uppercase and Count from RabbitMQ queues, the same JSON bodies as HTTP."""

from __future__ import annotations

import json

import aio_pika
import pytest

from examples.stringsvc.tests.running import running_service
from kitpy import Context, InvalidArgument
from kitpy.transport.amqp import Client
from tests.conftest import RabbitMQ


async def test_stringsvc_answers_from_rabbitmq_queues(rabbitmq_server: RabbitMQ) -> None:
    async with running_service("--amqp", rabbitmq_server.url) as svc:
        connection = await aio_pika.connect_robust(rabbitmq_server.url, timeout=10)
        try:
            channel = await connection.channel()

            def client(queue: str) -> Client[str, object]:
                return Client(
                    channel, queue,
                    lambda ctx, s: json.dumps({"s": s}).encode(),
                    lambda ctx, body: json.loads(body)["v"],
                )  # fmt: skip

            ctx = Context().with_timeout(10)
            assert await client("stringsvc.uppercase")(ctx, "hello") == "HELLO"
            assert await client("stringsvc.count")(ctx, "go kit") == 6
            with pytest.raises(InvalidArgument, match="empty string"):
                await client("stringsvc.uppercase")(ctx, "")
        finally:
            await connection.close()
        assert "stringsvc: AMQP consuming stringsvc.uppercase" in svc.lines
        assert await svc.stop() == 0
    assert "stringsvc: stopped" in svc.lines
