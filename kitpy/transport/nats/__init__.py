"""NATS transport (``kitpy[nats]``): endpoints served and called over NATS request-reply.

* :class:`Server` -- an endpoint answering messages on a subject, with the
  same options as the HTTP and gRPC Servers; :class:`Subscription` subscribes
  it (queue group, bounded concurrency, graceful drain).
* :class:`Client` -- a remote endpoint over request-reply, within the
  Context's deadline; :class:`Publisher` -- publish without waiting.
* JetStream: :class:`JetStreamConsumer` -- a Server fed by a durable pull
  consumer (ack on success, terminate client faults, nak with backoff,
  dead-letter after ``max_deliver``); :class:`JetStreamPublisher` -- publish
  and wait for the stream's ack.

The wire format (headers ``X-Timeout-Ms``, ``X-Request-Id``, ``Kit-Code`` and
the JSON error body) is shared with AMQP: :mod:`kitpy.transport.messaging.headers`.  The
application creates the connection (``await nats.connect(url)``), passes it
in and closes it.
"""

from kitpy._extras import require

require("nats", "msgspec", extra="nats")

from kitpy.transport.messaging import (
    CODE_HEADER,
    DELIVERIES,
    HEADERS,
    REQUEST_ID_HEADER,
    TIMEOUT_HEADER,
    ClientBefore,
    ClientFinalizer,
    ErrorEncoder,
    ErrorHandler,
    Outcome,
    ServerAfter,
    ServerBefore,
    ServerFinalizer,
    ServerOptions,
    default_error_encoder,
)
from kitpy.transport.nats.client import Client, ClientAfter, Publisher
from kitpy.transport.nats.jetstream import JetStreamConsumer, JetStreamPublisher
from kitpy.transport.nats.server import SUBJECT, Server
from kitpy.transport.nats.subscription import Subscription

__all__ = [
    "CODE_HEADER",
    "DELIVERIES",
    "HEADERS",
    "REQUEST_ID_HEADER",
    "SUBJECT",
    "TIMEOUT_HEADER",
    "Client",
    "ClientAfter",
    "ClientBefore",
    "ClientFinalizer",
    "ErrorEncoder",
    "ErrorHandler",
    "JetStreamConsumer",
    "JetStreamPublisher",
    "Outcome",
    "Publisher",
    "Server",
    "ServerAfter",
    "ServerBefore",
    "ServerFinalizer",
    "ServerOptions",
    "Subscription",
    "default_error_encoder",
]
