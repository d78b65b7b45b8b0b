"""svcname's settings: one frozen dataclass that :func:`kitpy.config.load` fills.

Each field is one setting with three spellings, each source overriding the
one before: ``http_addr`` in a TOML file (``--config PATH``, or the file named
by ``SVCNAME_CONFIG``), ``SVCNAME_HTTP_ADDR`` in the environment,
``--http-addr`` on the command line.  The string under a field is its
``--help`` text.  To add a setting, add a field::

    greeting: str = "Hello"
    \"\"\"The word each greeting starts with.\"\"\"

A value that does not fit stops the start with one line naming where it came
from (exit status 2); checks the types cannot express go in ``__post_init__``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kitpy.config import Address, Duration

__all__ = ["LogLevel", "Settings"]

LogLevel = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True)
class Settings:
    """Run svcname.

    Every flag can also be set by the environment variable named in its help,
    or in a TOML file (--config).
    """

    http_addr: Address = Address("127.0.0.1", 8080)
    """HTTP listen address, host:port (port 0 picks a free port)."""
    grpc_addr: Address = Address("127.0.0.1", 8081)
    """gRPC listen address, host:port (port 0 picks a free port)."""
    grpc_reflection: bool = True
    """Serve gRPC server reflection, so grpcurl can list the service."""
    shutdown_grace: Duration = Duration(10.0)
    """How long in-flight requests get to finish on shutdown."""
    shutdown_drain: Duration = Duration(0.5)
    """Time between reporting NOT_SERVING and refusing new requests."""
    log_format: Literal["json", "console"] = "json"
    """Log line format."""
    log_level: LogLevel = "info"
    """The least severe level logged."""
    max_in_flight: int = 256
    """Requests served at once, over HTTP and gRPC together, each counted from the moment its
    headers are read; beyond it (and the queue) they get 503 with Retry-After."""
    max_waiting: int = 256
    """Requests that may wait for a free slot before new ones are shed."""
    max_wait: Duration = Duration(1.0)
    """The longest a request waits for a free slot before it is shed (503, Retry-After)."""
    max_loop_lag: Duration = Duration(0.5)
    """Shed every new request while work waits longer than this to start on the event loop
    (overload); 0 turns it off."""
    max_connections: int | None = None
    """Open HTTP connections at most; one more is answered 503 and closed. Default: 3/4 of
    the open-file limit (ulimit -n), at most 10000."""
    idle_timeout: Duration = Duration(60.0)
    """Close an HTTP connection that sends no complete request for this long (idle
    keep-alive, or headers never finished)."""
    events_nats: str | None = None
    """Publish an event to JetStream after each Hello, at this NATS URL, e.g.
    nats://127.0.0.1:4222 (subject svcname.events.greeted,
    stream SVCNAME_EVENTS). Default: no events."""
