"""stringsvc over RabbitMQ request-reply: the same endpoints and JSON bodies as over HTTP.

Queues ``stringsvc.uppercase`` and ``stringsvc.count`` (durable, declared here)
take ``{"s": "hello"}`` with ``reply_to`` and a ``correlation_id`` and reply
``{"v": "HELLO"}`` / ``{"v": 5}``; an error reply carries ``Kit-Code`` and the
HTTP JSON error body.  Instances share the queues, so each request is answered
once.  Run with ``--amqp amqp://guest:guest@127.0.0.1:5672/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from aio_pika.abc import AbstractRobustConnection

from kitpy.lifecycle import Lifecycle
from kitpy.lifecycle.amqp import serve_amqp
from kitpy.transport.amqp import Server, ServerBefore, ServerFinalizer
from kitpy.transport.http import json_decoder

from .endpoints import CountRequest, Endpoints, UppercaseRequest

__all__ = ["QUEUES", "serve_stringsvc_amqp"]

QUEUES = ("stringsvc.uppercase", "stringsvc.count")
_encode = msgspec.json.Encoder().encode


async def serve_stringsvc_amqp(
    life: Lifecycle,
    connection: AbstractRobustConnection,
    endpoints: Endpoints,
    *,
    before: Sequence[ServerBefore] = (),
    finalizer: Sequence[ServerFinalizer] = (),
) -> None:
    """Declare the two queues and serve Uppercase and Count from them under ``life``."""
    decode_upper = json_decoder(UppercaseRequest)
    decode_count = json_decoder(CountRequest)
    uppercase = Server(
        endpoints.uppercase_endpoint,
        lambda ctx, msg: decode_upper(msg.body),
        lambda ctx, response: _encode(response),
        before=before,
        finalizer=finalizer,
    )
    count = Server(
        endpoints.count_endpoint,
        lambda ctx, msg: decode_count(msg.body),
        lambda ctx, response: _encode(response),
        before=before,
        finalizer=finalizer,
    )
    servers: dict[str, Server[Any, Any]] = {QUEUES[0]: uppercase, QUEUES[1]: count}
    for name, server in servers.items():
        channel = await connection.channel()  # one channel per consumer: its own prefetch
        queue = await channel.declare_queue(name, durable=True)
        await serve_amqp(life, channel, queue, server, prefetch=32)
