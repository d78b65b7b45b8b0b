"""stringsvc's settings: one frozen dataclass that :func:`kitpy.config.load` fills.

Each field is one setting with three spellings -- ``http_addr`` in a TOML file
(``--config PATH`` or ``STRINGSVC_CONFIG``), ``STRINGSVC_HTTP_ADDR`` in the
environment, ``--http-addr`` on the command line -- each source overriding the
one before; the string under a field is its ``--help`` text.  To add a
setting, add a field::

    greeting: str = "hello"
    \"\"\"The word each Uppercase answer starts with.\"\"\"

``rate_limit`` and ``log_level`` can also change while the service runs
(``--config-etcd``, see ``live.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from kitpy.config import URL, Address, Duration, Secret

__all__ = ["LogLevel", "Settings"]

LogLevel = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True)
class Settings:
    """Run stringsvc, the kitpy template service.

    Every flag can also be set by the environment variable named in its help,
    or in a TOML file (--config).
    """

    http_addr: Address = Address("127.0.0.1", 8080)
    """HTTP listen address, host:port (port 0 picks a free port)."""
    grpc_addr: Address = Address("127.0.0.1", 8081)
    """gRPC listen address, host:port (port 0 picks a free port)."""
    grpc_reflection: bool = True
    """Serve gRPC server reflection, so grpcurl can list and describe the service."""
    shutdown_grace: Duration = Duration(10.0)
    """How long in-flight requests get to finish on shutdown."""
    shutdown_drain: Duration = Duration(0.5)
    """Time between reporting NOT_SERVING (and deregistering) and refusing new requests."""
    log_format: Literal["auto", "json", "console"] = "auto"
    """Log line format; auto is console on a terminal, else json."""
    log_level: LogLevel = "info"
    """The least severe level logged; live with --config-etcd."""
    otlp_endpoint: str | None = None
    """Send spans by OTLP/gRPC to this endpoint (e.g. http://127.0.0.1:4317) instead of
    printing them; needs opentelemetry-exporter-otlp-proto-grpc."""
    trace_sample_ratio: float = 1.0
    """Fraction of new traces to record, 0..1 (a caller's sampling decision is kept)."""
    print_spans: bool = False
    """Print finished spans to stdout when no OTLP endpoint is set."""
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
    rate_limit: float | None = None
    """Requests per second on Uppercase and Count together, with a burst of the rate rounded
    up (beyond it: 429); unlimited when unset. Live with --config-etcd."""
    jwt_secret: Secret | None = None
    """Require an HS256 bearer token (audience 'stringsvc') signed with this secret (at
    least 32 bytes)."""
    jwks_url: URL | None = None
    """Require a bearer token (RS256/ES256/EdDSA, audience 'stringsvc') verified with the
    keys served at this JWKS URL."""
    nats: str | None = None
    """Also serve Uppercase and Count over NATS request-reply at this URL, e.g.
    nats://127.0.0.1:4222 (subjects stringsvc.uppercase, stringsvc.count)."""
    amqp: str | None = None
    """Also serve Uppercase and Count from RabbitMQ queues at this URL, e.g.
    amqp://guest:guest@127.0.0.1:5672/ (queues stringsvc.uppercase, stringsvc.count)."""
    register: str | None = None
    """Register this instance in etcd, e.g. etcd://127.0.0.1:2379."""
    proxy: str | None = None
    """Serve Uppercase by calling other instances: etcd://HOST:PORT (live instances) or
    static://HOST:PORT,HOST:PORT (their HTTP addresses)."""
    proxy_transport: Literal["http", "grpc"] = "http"
    """How the proxy calls the other instances."""
    sd_prefix: str = "/services/stringsvc/"
    """etcd key prefix under which instances register."""
    proxy_qps: float = 1000.0
    """Rate limit for proxied calls (per second); excess calls get 429."""
    proxy_burst: int = 100
    """Burst size of the proxy's rate limit."""
    proxy_attempts: int = 3
    """Attempts per proxied call (each on a freshly picked instance), within the deadline
    and a retry budget."""
    proxy_timeout: Duration = Duration(2.0)
    """Deadline for a proxied call when the caller sent none."""
    breaker_failures: int = 5
    """Consecutive failures that open an upstream instance's circuit breaker."""
    breaker_reset: Duration = Duration(5.0)
    """How long an open breaker waits before letting a trial call through."""
    config_etcd: URL | None = None
    """Follow the live settings (rate_limit, log_level) in this etcd: http://HOST:PORT, the
    URL etcdctl --endpoints takes (etcd://HOST:PORT works too)."""
    config_prefix: str = "/config/stringsvc/"
    """etcd key prefix of the live settings: PREFIX + rate_limit, PREFIX + log_level."""

    def __post_init__(self) -> None:
        """Refuse what the types allow but stringsvc cannot use; each message names its field."""
        _at_least(1, max_in_flight=self.max_in_flight, proxy_burst=self.proxy_burst)
        _at_least(1, proxy_attempts=self.proxy_attempts, breaker_failures=self.breaker_failures)
        _at_least(0, max_waiting=self.max_waiting)
        if self.max_connections is not None:
            _at_least(1, max_connections=self.max_connections)
        if not self.max_wait > 0 or not self.idle_timeout > 0:
            name = "max_wait" if not self.max_wait > 0 else "idle_timeout"
            raise ValueError(f"{name} must be > 0")
        if not 0.0 <= self.trace_sample_ratio <= 1.0:
            raise ValueError(
                f"trace_sample_ratio must be from 0 to 1, got {self.trace_sample_ratio}"
            )
        for name, rate in (("proxy_qps", self.proxy_qps), ("rate_limit", self.rate_limit)):
            if rate is not None and not rate > 0:
                raise ValueError(f"{name} must be > 0, got {rate}")
        if self.register is not None:
            _host_ports("register", self.register, schemes=("etcd",))
        if self.proxy is not None:
            _host_ports("proxy", self.proxy, schemes=("etcd", "static"))
        if self.config_etcd is not None and urlsplit(self.config_etcd).scheme not in _ETCD:
            raise ValueError(f"config_etcd must be http://HOST:PORT, got {self.config_etcd!r}")


_ETCD = ("http", "https", "etcd")


def _at_least(least: int, **values: int) -> None:
    for name, value in values.items():
        if value < least:
            raise ValueError(f"{name} must be >= {least}, got {value}")


def _host_ports(name: str, url: str, *, schemes: tuple[str, ...]) -> None:
    """Check ``scheme://HOST:PORT``; ``static://`` takes a comma-separated list."""
    scheme, sep, rest = url.partition("://")
    shapes = " or ".join(f"{s}://HOST:PORT" + (",..." if s == "static" else "") for s in schemes)
    addresses = rest.rstrip("/").split(",") if scheme == "static" else [rest.rstrip("/")]
    try:
        if scheme not in schemes or not sep:
            raise ValueError
        for address in addresses:
            Address.parse(address)
    except ValueError:
        raise ValueError(f"{name} must be {shapes}, got {url!r}") from None
