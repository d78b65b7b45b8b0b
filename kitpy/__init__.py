"""kitpy: a Go kit-style toolkit for microservices in Python.

Business logic lives in plain service classes; each method becomes an
:class:`~kitpy.endpoint.Endpoint`; middleware wraps endpoints; transports bind
them to HTTP (``kitpy.transport.http``) and gRPC (``kitpy.transport.grpc``).

Importing ``kitpy`` pulls in no third-party package: integrations live in
subpackages behind extras (``pip install "kitpy[http,grpc]"``).
"""

from kitpy.context import OPERATION, REQUEST_ID, Clock, Context, Key
from kitpy.endpoint import (
    Endpoint,
    GenericMiddleware,
    Middleware,
    chain,
    endpoint_name,
    failed,
    keep_name,
    named,
    nop,
)
from kitpy.errors import (
    Aborted,
    AlreadyExists,
    Cancelled,
    CircuitOpen,
    Code,
    DataLoss,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    KitError,
    NotFound,
    OutOfRange,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    Unknown,
)

__version__ = "0.3.0"

__all__ = [
    "OPERATION",
    "REQUEST_ID",
    "Aborted",
    "AlreadyExists",
    "Cancelled",
    "CircuitOpen",
    "Clock",
    "Code",
    "Context",
    "DataLoss",
    "DeadlineExceeded",
    "Endpoint",
    "FailedPrecondition",
    "GenericMiddleware",
    "Internal",
    "InvalidArgument",
    "Key",
    "KitError",
    "Middleware",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "RateLimited",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "Unknown",
    "__version__",
    "chain",
    "endpoint_name",
    "failed",
    "keep_name",
    "named",
    "nop",
]
