"""The AMQP server side: kitpy's message Server reading RabbitMQ deliveries.

:class:`Server` is the :class:`~kitpy.transport.messaging.MessageServer`
(one path from message to outcome, the same options as the HTTP and gRPC
Servers) for aio-pika's incoming messages: the Context gets the routing key
(:data:`ROUTING_KEY`, and as :data:`~kitpy.context.OPERATION`), the headers
(text values only), and :data:`~kitpy.transport.messaging.DELIVERIES`
from kitpy's ``Kit-Deliveries`` header (1 on a first delivery, 2 when the
broker marks it redelivered).  :class:`~kitpy.transport.amqp.Consumer` feeds
it from a queue and settles each outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from aio_pika.abc import AbstractIncomingMessage

from kitpy.context import Key
from kitpy.transport.messaging.server import DELIVERIES, Envelope, MessageServer

__all__ = ["DELIVERIES_HEADER", "ROUTING_KEY", "Server", "text_headers"]

Req = TypeVar("Req")
Resp = TypeVar("Resp")

ROUTING_KEY: Key[str] = Key("amqp.routing_key")
"""The routing key the message was published with (the queue name on the default exchange)."""
DELIVERIES_HEADER = "Kit-Deliveries"
"""How many times kitpy has delivered this message (set when it republishes it for a retry)."""


def text_headers(headers: Mapping[str, Any] | None) -> dict[str, str]:
    """The headers whose values are text (kitpy's and W3C's all are); bytes are decoded."""
    out: dict[str, str] = {}
    for key, value in (headers or {}).items():
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, bytes):
            out[key] = value.decode("utf-8", "replace")
        elif isinstance(value, int) and not isinstance(value, bool):
            out[key] = str(value)
    return out


class Server(MessageServer[Req, Resp, AbstractIncomingMessage]):
    """An endpoint served from a RabbitMQ queue (see the module docstring).

    Example::

        server = Server(uppercase, decode_upper, encode_json)
        consumer = await Consumer.start(channel, "stringsvc.uppercase", server)
    """

    def envelope(self, msg: AbstractIncomingMessage) -> Envelope:
        """The routing key, text headers and delivery count of ``msg``."""
        headers = text_headers(msg.headers)
        counted = headers.get(DELIVERIES_HEADER, "")
        deliveries = int(counted) if counted.isdigit() else (2 if msg.redelivered else 1)
        routing_key = msg.routing_key or ""
        values: dict[Key[Any], Any] = {ROUTING_KEY: routing_key, DELIVERIES: deliveries}
        return Envelope(routing_key, headers, values)
