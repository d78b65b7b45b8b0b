"""NATS transport (``kitpy[nats]``): endpoints served and called over NATS request-reply.

* :class:`Server` -- an endpoint answering messages on a subject, with the
  same options as the HTTP and gRPC Servers; :class:`Subscription` subscribes
  it (queue group, bounded concurrency, graceful drain).
* :class:`Client` -- a remote endpoint over request-reply, within the
  Context's deadline; :class:`Publisher` -- publish without waiting.

The wire format (headers ``X-Timeout-Ms``, ``X-Request-Id``, ``Kit-Code`` and
the JSON error body) is in :mod:`kitpy.transport.nats.headers`.  The
application creates the connection (``await nats.connect(url)``), passes it
in and closes it.
"""

from kitpy._extras import require

require("nats", "msgspec", extra="nats")

from kitpy.transport.nats.client import (
    Client,
    ClientAfter,
    ClientBefore,
    ClientFinalizer,
    Publisher,
)
from kitpy.transport.nats.headers import (
    CODE_HEADER,
    REQUEST_ID_HEADER,
    TIMEOUT_HEADER,
    error_body,
    error_from_reply,
    timeout_from_headers,
)
from kitpy.transport.nats.server import (
    HEADERS,
    SUBJECT,
    ErrorEncoder,
    ErrorHandler,
    Server,
    ServerAfter,
    ServerBefore,
    ServerFinalizer,
    default_error_encoder,
)
from kitpy.transport.nats.subscription import Subscription

__all__ = [
    "CODE_HEADER",
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
    "Publisher",
    "Server",
    "ServerAfter",
    "ServerBefore",
    "ServerFinalizer",
    "Subscription",
    "default_error_encoder",
    "error_body",
    "error_from_reply",
    "timeout_from_headers",
]
