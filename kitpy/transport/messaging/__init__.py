"""What kitpy's broker transports (NATS, AMQP) share: the message headers and the server core.

* :mod:`~kitpy.transport.messaging.headers` -- ``X-Timeout-Ms``,
  ``X-Request-Id``, ``Kit-Code`` and the JSON error body;
* :class:`MessageServer` -- one path from a message to an :class:`Outcome`,
  with the same options as the HTTP and gRPC Servers;
* the client hook types and :func:`outgoing_headers`.

Applications import :mod:`kitpy.transport.nats` or :mod:`kitpy.transport.amqp`;
this package is for those transports (and for writing another one).
"""

from kitpy._extras import require

require("msgspec", extra="nats")

from kitpy.transport.messaging.client import (
    ClientBefore,
    ClientFinalizer,
    EncodeRequest,
    outgoing_headers,
)
from kitpy.transport.messaging.headers import (
    CODE_HEADER,
    REQUEST_ID_HEADER,
    TIMEOUT_HEADER,
    error_body,
    error_from_reply,
    timeout_from_headers,
)
from kitpy.transport.messaging.server import (
    DELIVERIES,
    HEADERS,
    Envelope,
    ErrorEncoder,
    ErrorHandler,
    MessageServer,
    Outcome,
    ServerAfter,
    ServerBefore,
    ServerFinalizer,
    ServerOptions,
    Settle,
    default_error_encoder,
)

__all__ = [
    "CODE_HEADER",
    "DELIVERIES",
    "HEADERS",
    "REQUEST_ID_HEADER",
    "TIMEOUT_HEADER",
    "ClientBefore",
    "ClientFinalizer",
    "EncodeRequest",
    "Envelope",
    "ErrorEncoder",
    "ErrorHandler",
    "MessageServer",
    "Outcome",
    "ServerAfter",
    "ServerBefore",
    "ServerFinalizer",
    "ServerOptions",
    "Settle",
    "default_error_encoder",
    "error_body",
    "error_from_reply",
    "outgoing_headers",
    "timeout_from_headers",
]
