"""The NATS server side: an endpoint answering messages on a subject.

:class:`Server` is kitpy's :class:`~kitpy.transport.messaging.MessageServer`
(one path from message to outcome, the same options as the HTTP and gRPC
Servers) reading NATS messages: the Context gets :data:`SUBJECT`, the message
headers, :data:`~kitpy.context.OPERATION` = the subject and, for a JetStream
message, :data:`~kitpy.transport.messaging.DELIVERIES`.  :meth:`Server.handler`
binds it to a connection for request-reply (the outcome is published to the
message's reply subject; a plain publish gets no reply);
:class:`~kitpy.transport.nats.Subscription` subscribes it with bounded
concurrency, and :class:`~kitpy.transport.nats.JetStreamConsumer` feeds it
from a durable consumer and acks instead.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import nats.aio.client
from nats.aio.msg import Msg

from kitpy.context import Context, Key
from kitpy.transport.messaging.server import DELIVERIES, Envelope, MessageServer, Outcome

__all__ = ["SUBJECT", "Server"]

Req = TypeVar("Req")
Resp = TypeVar("Resp")

SUBJECT: Key[str] = Key("nats.subject")
"""The subject the message arrived on."""

_JS_ACK_PREFIX = "$JS.ACK."
_V1_ACK_TOKENS = 9
_V2_ACK_TOKENS = 11  # 12 with the trailing random token, which a server may omit


def _deliveries(msg: Msg) -> int:
    """How often JetStream has delivered ``msg``: its ``metadata.num_delivered``, read alone.

    nats-py's ``msg.metadata`` parses the whole ack subject into a dataclass with
    a ``datetime`` (~2.6 us, a tenth of a message's cost on a durable consumer);
    this reads the one field (~0.3 us) and falls back to ``metadata`` for an ack
    subject of a shape it does not know.
    """
    tokens = msg.reply.split(".")
    if len(tokens) == _V1_ACK_TOKENS:  # $JS.ACK.stream.consumer.delivered.sseq.cseq.ts.pending
        return int(tokens[4])
    if len(tokens) >= _V2_ACK_TOKENS:  # $JS.ACK.domain.hash.stream.consumer.delivered...
        return int(tokens[6])
    return msg.metadata.num_delivered


class Server(MessageServer[Req, Resp, Msg]):
    """An endpoint served on a NATS subject (see the module docstring).

    Example::

        server = Server(uppercase, decode_upper, encode_json)
        sub = await Subscription.start(nc, "stringsvc.uppercase", server, queue="stringsvc")
    """

    def envelope(self, msg: Msg) -> Envelope:
        """The subject, headers and (JetStream) delivery count of ``msg``."""
        values: dict[Key[Any], Any] = {SUBJECT: msg.subject}
        if msg.reply.startswith(_JS_ACK_PREFIX):
            values[DELIVERIES] = _deliveries(msg)
        return Envelope(msg.subject, msg.headers or {}, values)

    def handler(self, nc: nats.aio.client.Client) -> Callable[[Msg], Coroutine[Any, Any, None]]:
        """The callback for request-reply on ``nc``: each outcome is published as the reply."""

        async def reply(msg: Msg, ctx: Context, outcome: Outcome) -> None:
            if msg.reply:
                await nc.publish(msg.reply, outcome.body, headers=outcome.headers or None)

        async def handle(msg: Msg) -> None:
            await self.serve(msg, reply)

        return handle
