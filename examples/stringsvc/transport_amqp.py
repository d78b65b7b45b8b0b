"""stringsvc over RabbitMQ request-reply: the same endpoints and JSON bodies as over HTTP.

Queues ``stringsvc.uppercase`` and ``stringsvc.count`` (durable, declared here)
take ``{"s": "hello"}`` with ``reply_to`` and a ``correlation_id`` and reply
``{"v": "HELLO"}`` / ``{"v": 5}``; an error reply carries ``Kit-Code`` and the
HTTP JSON error body.  Instances share the queues, so each request is answered
once.  Run with ``--amqp amqp://guest:guest@127.0.0.1:5672/``.
"""

from __future__ import annotations

from typing import Unpack

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from kitpy.lifecycle import Lifecycle
from kitpy.lifecycle.amqp import serve_amqp
from kitpy.transport.amqp import Server, ServerOptions

from .endpoints import Endpoints
from .transport_messages import json_servers

__all__ = ["serve_stringsvc_amqp"]


def _body(msg: AbstractIncomingMessage) -> bytes:
    return msg.body


async def serve_stringsvc_amqp(
    life: Lifecycle,
    connection: AbstractRobustConnection,
    endpoints: Endpoints,
    **options: Unpack[ServerOptions],
) -> None:
    """Declare the two queues and serve Uppercase and Count from them under ``life``."""
    servers = json_servers(Server, endpoints, _body, **options)
    for name, server in servers.items():
        channel = await connection.channel()  # one channel per consumer: its own prefetch
        queue = await channel.declare_queue(name, durable=True)
        await serve_amqp(life, channel, queue, server, prefetch=32)
