"""AMQP transport (``kitpy[amqp]``): endpoints served and called over RabbitMQ, on aio-pika.

* :class:`Server` -- kitpy's message Server for RabbitMQ deliveries, with the
  same options as the HTTP and gRPC Servers; :class:`Consumer` feeds it from a
  queue (manual acks, prefetch as the concurrency bound, retries up to
  ``max_deliver``, dead letters, request-reply over ``reply_to``, drain).
* :class:`Client` -- a remote endpoint over request-reply within the Context's
  deadline; :class:`Publisher` -- a publish confirmed by the broker.

Headers and error bodies are those of :mod:`kitpy.transport.messaging.headers`,
shared with NATS.  The application opens the connection and channel
(``await aio_pika.connect_robust(url)``; channels have publisher confirms by
default), declares its queues and exchanges, passes them in and closes them.
"""

from kitpy._extras import require

require("aio_pika", "msgspec", extra="amqp")

from kitpy.transport.amqp.client import Client, ClientAfter, Publisher
from kitpy.transport.amqp.consumer import Consumer
from kitpy.transport.amqp.publish import confirmed_publish
from kitpy.transport.amqp.server import DELIVERIES_HEADER, ROUTING_KEY, Server, text_headers
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

__all__ = [
    "CODE_HEADER",
    "DELIVERIES",
    "DELIVERIES_HEADER",
    "HEADERS",
    "REQUEST_ID_HEADER",
    "ROUTING_KEY",
    "TIMEOUT_HEADER",
    "Client",
    "ClientAfter",
    "ClientBefore",
    "ClientFinalizer",
    "Consumer",
    "ErrorEncoder",
    "ErrorHandler",
    "Outcome",
    "Publisher",
    "Server",
    "ServerAfter",
    "ServerBefore",
    "ServerFinalizer",
    "ServerOptions",
    "confirmed_publish",
    "default_error_encoder",
    "text_headers",
]
