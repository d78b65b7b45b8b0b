"""The gateway process's own settings (``python -m kitpy.gateway``), read with kitpy.config.

They sit at the top level of the same TOML file as the route table (whose
``[[route]]`` and ``[upstream.NAME]`` tables kitpy.config leaves to
:mod:`~kitpy.gateway.route_config`), and each can also be given as an
environment variable ``KITPY_GATEWAY_<FIELD>`` or a flag ``--<field>``::

    listen = "0.0.0.0:8080"
    etcd = "http://127.0.0.1:2379"
    jwt_secret_file = "/run/secrets/jwt"

    [[route]]
    ...
"""

from __future__ import annotations

from dataclasses import dataclass

from kitpy.config import URL, Address, Duration, Secret

__all__ = ["ENV_PREFIX", "GatewaySettings"]

ENV_PREFIX = "KITPY_GATEWAY"
"""Environment variables for the settings start with ``KITPY_GATEWAY_``."""


@dataclass(frozen=True)
class GatewaySettings:
    """Settings of the kitpy API gateway; the route table is in the same file."""

    listen: Address = Address("127.0.0.1", 8080)
    """Where the gateway serves (host:port)."""
    metrics_addr: Address | None = None
    """Serve Prometheus metrics (/metrics) and /healthz on this host:port; off when unset."""
    etcd: URL | None = None
    """etcd endpoint (http://host:port) for upstreams with etcd_prefix and for routes_key."""
    routes_key: str = ""
    """An etcd key holding a route table that, while it exists, overrides the file's."""
    reload_interval: Duration = Duration(1.0)
    """How often the file is checked for a new route table."""
    jwt_secret: Secret | None = None
    """HS256 secret verifying callers' tokens on auth = "jwt" routes (or jwt_secret_file)."""
    jwt_public_key_file: str = ""
    """A PEM public key verifying callers' tokens (RS256, ES256, EdDSA), instead of a secret."""
    jwt_algorithms: tuple[str, ...] = ()
    """Accepted token algorithms; default HS256 with a secret, RS256 and ES256 with a key."""
    jwt_audience: str = ""
    """The aud callers' tokens must carry; not checked when empty."""
    jwt_issuer: str = ""
    """The iss callers' tokens must carry; not checked when empty."""
    claims_secret: Secret | None = None
    """Secret (32+ bytes) signing verified claims sent upstream in X-Gateway-Claims; unset: not
    sent."""
    redis: URL | None = None
    """Share per-client rate limits between gateways through this Redis (redis://host:port/0);
    unset: each process counts alone."""
    access_log: bool = True
    """Write one JSON line per request (route, status, duration, ...) to stdout."""
    log_level: str = "info"
    """The least severe level logged: debug, info, warning, error."""
    max_connections: int | None = None
    """Most caller connections at once; more wait in the listen backlog. Unlimited when unset."""
    idle_timeout: Duration = Duration(60.0)
    """Seconds a caller's idle keep-alive connection stays open."""
    shutdown_drain: Duration = Duration(0.0)
    """Seconds between reporting NOT_SERVING and closing the listener, on SIGTERM."""
    shutdown_grace: Duration = Duration(10.0)
    """Seconds requests in flight get to finish after the listener closed."""

    def __post_init__(self) -> None:
        if self.jwt_secret is not None and self.jwt_public_key_file:
            raise ValueError("jwt_secret: give jwt_secret or jwt_public_key_file, not both")
        if self.routes_key and self.etcd is None:
            raise ValueError("routes_key: needs etcd (the endpoint holding the key)")
