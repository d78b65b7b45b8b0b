"""``python -m kitpy.gateway --config gateway.toml``: the gateway as a process.

One TOML file holds the gateway's settings (:class:`~kitpy.gateway.settings.GatewaySettings`,
at the top level) and its route table (``[[route]]``, ``[upstream.NAME]``).
:func:`serve` builds everything from them -- the logger, the Prometheus
registry, the etcd client, the JWT parser and claims
signer, the rate limits -- and runs a :class:`~kitpy.gateway.Gateway` under a
:class:`~kitpy.lifecycle.Lifecycle` until SIGINT or SIGTERM: then
``/healthz`` turns 503, ``shutdown_drain`` seconds pass, the listener closes
and requests in flight get ``shutdown_grace`` seconds.

The file is followed: a changed route table is in use within
``reload_interval``, an invalid one is logged and ignored.  The settings
themselves are read once, at start.  A bad setting or route table at start is
one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from kitpy.config import load, settings_fields
from kitpy.lifecycle import Lifecycle
from kitpy.lifecycle.heap import settle_heap
from kitpy.lifecycle.http import Health, serve_http
from kitpy.lifecycle.run import run
from kitpy.log import make_logger
from kitpy.log.stdlib import StdlibBridge
from kitpy.metrics.prometheus import metrics_handler

from .app import Gateway
from .claims import ClaimsSigner
from .edge import ClientLimits, LocalLimits, RedisLimits
from .live_routes import LiveRouteTable
from .observe import RouteObserver, gateway_instruments
from .settings import ENV_PREFIX, GatewaySettings

if TYPE_CHECKING:
    from kitpy.auth.jwt import JWTParser

__all__ = ["main", "serve"]

_TABLE_KEYS = ("route", "upstream")  # the route table's top-level keys, not settings


def _jwt(settings: GatewaySettings) -> JWTParser[Any] | None:
    """The parser for callers' tokens, when a key is configured."""
    if settings.jwt_secret is None and not settings.jwt_public_key_file:
        return None
    from kitpy.auth.jwt import jwt_parser  # kitpy[jwt]

    key: str | bytes
    if settings.jwt_secret is not None:
        key, default = settings.jwt_secret.reveal().encode(), ["HS256"]
    else:
        key, default = Path(settings.jwt_public_key_file).read_bytes(), ["RS256", "ES256"]
    return jwt_parser(
        key,
        algorithms=list(settings.jwt_algorithms) or default,
        audience=settings.jwt_audience or None,
        issuer=settings.jwt_issuer or None,
    )


async def serve(
    settings: GatewaySettings, config: str, *, announce: Callable[[str], None] = print
) -> None:
    """Run the gateway of ``config`` (its route table) with ``settings`` until a signal."""
    logger = make_logger(level=settings.log_level)
    bridge = StdlibBridge.install(logger)  # aiohttp's and kitpy.gateway's records as JSON lines
    try:
        await _serve(settings, config, logger, announce)
    finally:
        bridge.uninstall()


async def _serve(
    settings: GatewaySettings, config: str, logger: Any, announce: Callable[[str], None]
) -> None:
    async with Lifecycle(
        name="gateway",
        drain=settings.shutdown_drain,
        grace=settings.shutdown_grace,
        announce=announce,
    ) as life:
        registry = CollectorRegistry()
        requests, duration = gateway_instruments(registry)
        observer = RouteObserver(
            logger=logger if settings.access_log else None, requests=requests, duration=duration
        )
        etcd = None
        if settings.etcd is not None:
            from kitpy.sd.etcd import EtcdClient

            etcd = life.close(EtcdClient(settings.etcd))
        limits: ClientLimits = LocalLimits()
        if settings.redis is not None:
            redis_limits = RedisLimits(settings.redis)
            life.on_shutdown(redis_limits.close, "rate limits closed")
            limits = redis_limits
        routes = LiveRouteTable(
            path=config,
            interval=settings.reload_interval,
            etcd=etcd if settings.routes_key else None,
            key=settings.routes_key,
            ignore=_settings_keys(),
        )
        claims = None
        if settings.claims_secret is not None:
            claims = ClaimsSigner(settings.claims_secret.reveal())
        gateway = await life.enter(
            Gateway(
                routes,
                etcd=etcd,
                jwt=_jwt(settings),
                claims=claims,
                limits=limits,
                observer=observer,
            )
        )
        await serve_http(
            life,
            gateway.app(),
            host=settings.listen.host,
            port=settings.listen.port,
            max_connections=settings.max_connections,
            idle_timeout=settings.idle_timeout,
            # a caller that hangs up cancels its request: the upstream call stops, and the
            # access log says 499 (aiohttp lets the handler run on unless told so)
            handler_cancellation=True,
        )
        if settings.metrics_addr is not None:  # every path of the main listener is a route's
            health = Health()
            admin = web.Application()
            admin.router.add_get("/metrics", metrics_handler(registry))
            admin.router.add_get("/healthz", health.handle)
            host, port = settings.metrics_addr
            admin_server = await serve_http(life, admin, host=host, port=port, health=health)
            announce(f"gateway: /metrics and /healthz on {admin_server.url}")
        announce(f"gateway: routes {gateway.table!r} from {config}")
        settle_heap()  # grpc and protobuf make a big heap: full GC passes cost ~17 ms each
        await life.wait_for_signal()


def _settings_keys() -> set[str]:
    """The top-level keys of the file that are settings (a secret's ``_file`` spelling too),
    which the route table skips."""
    names = {field.path[0] for field in settings_fields(GatewaySettings)}
    return names | {f"{name}_file" for name in names}


def main(argv: Sequence[str] | None = None) -> None:
    """The command line: ``python -m kitpy.gateway --config gateway.toml [--<setting> ...]``."""
    args = sys.argv[1:] if argv is None else list(argv)
    prog = "python -m kitpy.gateway"
    settings = load(GatewaySettings, prefix=ENV_PREFIX, prog=prog, argv=args, ignore=_TABLE_KEYS)
    first = argparse.ArgumentParser(add_help=False)  # where the route table is: the same file
    first.add_argument("--config")
    config = first.parse_known_args(args)[0].config or os.environ.get(f"{ENV_PREFIX}_CONFIG")
    if not config:
        print(
            f"{prog}: error: give the file with the route table: --config gateway.toml "
            f"(or {ENV_PREFIX}_CONFIG)",
            file=sys.stderr,
        )
        raise SystemExit(2)
    logging.getLogger("kitpy.gateway").setLevel(logging.INFO)  # table reloads and rejections

    def announce(line: str) -> None:
        print(line, flush=True)

    run(serve(settings, config, announce=announce), name="gateway")
