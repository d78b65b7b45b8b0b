"""The gRPC transport on grpc.aio: endpoints served as unary or streaming methods, and called.

* :class:`Server` -- an endpoint as an async ``(request_message, grpc_context)``
  callable that a generated servicer method delegates to.
* :class:`Client` -- one remote unary method as an :class:`~kitpy.endpoint.Endpoint`.
* :class:`StreamServer` / :class:`StreamClient` -- the same for streaming
  methods (server-, client- and bidi-streaming, :data:`StreamKind`): a
  :class:`~kitpy.endpoint.stream.StreamEndpoint` served, and called.
* :class:`GrpcServer` -- a grpc.aio server with the standard health service
  and graceful stop.
* Status mapping (:func:`grpc_status`, :func:`code_from_grpc_status`,
  :func:`error_from_rpc_error`) and metadata helpers (see :mod:`.metadata`).

Errors keep their meaning across the wire: a ``KitError`` raised behind a
:class:`Server` is raised again by a :class:`Client` as the same subclass with
the same message.  Deadlines travel as the gRPC timeout and come back as the
Context deadline on the server.

Needs the ``grpc`` extra: ``pip install "kitpy[grpc]"``.
"""

from kitpy._extras import require

require("grpc", "grpc_health", "google.protobuf", extra="grpc")

from .client import Client, ClientAfter, ClientBefore, ClientFinalizer, ErrorDecoder
from .metadata import (
    INVOCATION_PAIRS,
    METADATA,
    METHOD,
    PEER,
    Metadata,
    MutableMetadata,
    OutgoingMetadata,
    context_to_metadata,
    context_to_response_metadata,
    incoming_request_id,
    metadata_from_pairs,
    metadata_to_context,
    metadata_to_pairs,
    response_metadata_to_context,
    set_response_metadata,
)
from .serve import GrpcServer
from .server import (
    ErrorEncoder,
    ErrorHandler,
    Server,
    ServerAfter,
    ServerBefore,
    ServerFinalizer,
    ServerOptions,
    default_error_encoder,
)
from .status import code_from_grpc_status, error_from_rpc_error, grpc_status
from .stream import StreamClient, StreamKind, StreamServer

__all__ = [
    "INVOCATION_PAIRS",
    "METADATA",
    "METHOD",
    "PEER",
    "Client",
    "ClientAfter",
    "ClientBefore",
    "ClientFinalizer",
    "ErrorDecoder",
    "ErrorEncoder",
    "ErrorHandler",
    "GrpcServer",
    "Metadata",
    "MutableMetadata",
    "OutgoingMetadata",
    "Server",
    "ServerAfter",
    "ServerBefore",
    "ServerFinalizer",
    "ServerOptions",
    "StreamClient",
    "StreamKind",
    "StreamServer",
    "code_from_grpc_status",
    "context_to_metadata",
    "context_to_response_metadata",
    "default_error_encoder",
    "error_from_rpc_error",
    "grpc_status",
    "incoming_request_id",
    "metadata_from_pairs",
    "metadata_to_context",
    "metadata_to_pairs",
    "response_metadata_to_context",
    "set_response_metadata",
]
