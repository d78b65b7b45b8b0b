"""Run stringsvc: ``python -m examples.stringsvc [--http-addr HOST:PORT] ...`` (see ``--help``).

:func:`serve` is the whole life of the process.  It builds observability, the
service (with ``--proxy``, one that sends Uppercase to other instances) and its
endpoints with their middleware; starts HTTP and gRPC; registers in etcd
(``--register``); with ``--config-etcd`` follows the live settings (``live.py``);
and waits for SIGINT/SIGTERM.  The :class:`~kitpy.lifecycle.Lifecycle`
then stops it in order, announcing each step on stdout (``stringsvc: NOT_SERVING
...``): health NOT_SERVING, deregister, ``--shutdown-drain`` seconds, refuse
new connections while in-flight requests finish (``--shutdown-grace``), flush
spans, close client sessions and channels.
"""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Literal

import aio_pika
import aiohttp
import nats
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from kitpy import Context, chain
from kitpy.auth import grpc_to_context, http_to_context, message_to_context
from kitpy.auth.jwt import jwt_parser
from kitpy.auth.jwt.jwks import JWKS
from kitpy.config import Address, Live, load
from kitpy.endpoint.stream import lift, stream_chain
from kitpy.lifecycle import Lifecycle
from kitpy.lifecycle.grpc import serve_grpc
from kitpy.lifecycle.http import Health, serve_http
from kitpy.lifecycle.run import run
from kitpy.log import StdlibBridge
from kitpy.ratelimit import ConcurrencyLimiter, LoopLag
from kitpy.sd.etcd import EtcdClient, EtcdRegistrar
from kitpy.tracing import message_server_before, message_server_finalizer
from kitpy.transport.messaging import ServerOptions as BrokerOptions

from .config import Settings
from .endpoints import make_endpoints
from .events import PublishingService, ensure_stream
from .live import LiveSettings, follow_etcd, rate_limiter
from .observability import Observability, build_observability
from .proxy import ProxyingService, open_proxy, registration
from .service import BasicStringService, StringService
from .transport_amqp import serve_stringsvc_amqp
from .transport_grpc import make_grpc_server
from .transport_http import make_http_app
from .transport_nats import serve_stringsvc_nats

AUDIENCE = "stringsvc"
"""The ``aud`` claim a token must carry when authentication is on."""
ISSUER = "stringsvc-auth"
"""The ``iss`` claim a token must carry when authentication is on (``cli.py`` signs with it)."""

Authenticate = Callable[[Context], Awaitable[Context]]
"""The Servers' ``authenticate`` option: check the caller before the body is read."""


def _log_format(config: Settings) -> Literal["json", "console"]:
    if config.log_format == "auto":
        return "console" if sys.stdout.isatty() else "json"
    return "console" if config.log_format == "console" else "json"


class _DiscardSpans(SpanExporter):
    """Drops finished spans: traces still get ids (for logs and propagation), none are kept."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _observability(config: Settings, log_level: str | Live[str]) -> Observability:
    exporter = None
    if config.otlp_endpoint is None and not config.print_spans:
        exporter = _DiscardSpans()
    return build_observability(
        log_format=_log_format(config),
        log_level=log_level,
        otlp_endpoint=config.otlp_endpoint,
        sample_ratio=config.trace_sample_ratio,
        span_exporter=exporter,
    )


@contextlib.asynccontextmanager
async def _authentication(
    config: Settings, session: aiohttp.ClientSession
) -> AsyncIterator[Authenticate | None]:
    """The JWT check when --jwt-secret or --jwks-url is given, else None.

    Every Server runs it before it reads a body (``authenticate=``), so an
    anonymous caller gets 401 / UNAUTHENTICATED, never a decode error.  A token
    must carry ``iss`` :data:`ISSUER`, ``aud`` :data:`AUDIENCE` and an ``exp``.
    """
    if config.jwt_secret is not None:
        secret = config.jwt_secret.reveal().encode()
        parser = jwt_parser(secret, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)
        yield parser.authenticate
    elif config.jwks_url is not None:
        keys = JWKS(config.jwks_url, session=session)
        try:
            yield jwt_parser(
                keys, algorithms=["RS256", "ES256", "EdDSA"], audience=AUDIENCE, issuer=ISSUER
            ).authenticate
        finally:
            await keys.close()
    else:
        yield None


async def _admission(life: Lifecycle, config: Settings) -> ConcurrencyLimiter:
    """One pool of slots for every HTTP and gRPC request (the brokers bound their own).

    A request is shed (503 / UNAVAILABLE, Retry-After) when the pool and its
    queue are full, after ``max_wait`` in the queue, and at once while the
    event loop lags over ``max_loop_lag`` -- where an overloaded asyncio
    process queues its work, out of the pool's sight.
    """
    lag = None
    if config.max_loop_lag > 0:
        lag = await life.enter(LoopLag(max_lag=config.max_loop_lag))
    return ConcurrencyLimiter(
        config.max_in_flight, max_waiting=config.max_waiting, max_wait=config.max_wait, lag=lag
    )


async def serve(config: Settings, *, announce: Callable[[str], None] = print) -> None:
    """Run stringsvc with ``config`` until SIGINT or SIGTERM, then shut down in order."""
    live = LiveSettings(config) if config.config_etcd is not None else None
    obs = _observability(config, live.log_level if live is not None else config.log_level)
    if live is not None:
        live.log_to(obs.logger)
    # aiohttp's, asyncio's and grpc's own log records come out as our JSON lines too
    bridge = StdlibBridge.install(obs.logger)
    try:
        await _serve(config, obs, live, announce)
    finally:
        bridge.uninstall()


async def _serve(
    config: Settings,
    obs: Observability,
    live: LiveSettings | None,
    announce: Callable[[str], None],
) -> None:
    instance_id = uuid.uuid4().hex  # tells this process's registration apart from the others
    async with Lifecycle(
        name="stringsvc",
        drain=config.shutdown_drain,
        grace=config.shutdown_grace,
        announce=announce,
    ) as life:
        life.on_shutdown(obs.shutdown, "spans flushed")
        session = life.close(aiohttp.ClientSession())
        auth = await life.enter(_authentication(config, session))
        if live is not None and config.config_etcd is not None:  # read before serving
            await follow_etcd(life, live, url=config.config_etcd, prefix=config.config_prefix)

        # The service: local, or with --proxy one whose Uppercase calls other instances.
        svc: StringService = BasicStringService()
        if config.proxy is not None:
            upstream = await life.enter(
                open_proxy(config, session=session, obs=obs, instance_id=instance_id)
            )
            svc = ProxyingService(svc, upstream)
        nc = None
        if config.nats is not None:  # with NATS, each Uppercase also publishes an event
            nc = life.close(await nats.connect(config.nats, name="stringsvc"))
            await ensure_stream(nc)
            svc = PublishingService.over_nats(svc, nc)
        # Server middleware, outermost first: span + log + metrics, the rate limit (one bucket
        # for all three methods; a Tokens stream takes one token when it starts, through
        # lift).  Authentication and the concurrency limit are not layers here: every Server
        # runs them before it reads a body (authenticate=, admission=).
        rate = rate_limiter(live.rate_limit if live is not None else config.rate_limit)
        endpoints = make_endpoints(
            svc,
            middleware=chain(obs.server_middleware(), *rate),
            stream_middleware=stream_chain(
                obs.server_stream_middleware(), *(lift(layer) for layer in rate)
            ),
        )
        admission = await _admission(life, config)

        health = Health()
        http_app = make_http_app(
            endpoints,
            health=health,
            before=(*obs.http_server_before, http_to_context),
            error_handler=obs.server_error_handler,
            finalizer=obs.http_server_finalizer,
            authenticate=auth,
            admission=admission,
        )
        http_app.router.add_get("/metrics", obs.metrics_handler)
        grpc_server = make_grpc_server(
            endpoints,
            before=(*obs.grpc_server_before, grpc_to_context),
            error_handler=obs.server_error_handler,
            finalizer=obs.grpc_server_finalizer,
            reflection=config.grpc_reflection,
            authenticate=auth,
            admission=admission,
        )
        # the broker Servers: traced like the others, the JWT from the Authorization header
        broker: BrokerOptions = {
            "before": (message_server_before(obs.tracer, kind=SpanKind.SERVER), message_to_context),
            "error_handler": obs.server_error_handler,
            "finalizer": (message_server_finalizer(),),
            "authenticate": auth,
        }
        if nc is not None:  # subscribed before the HTTP and gRPC listeners announce
            await serve_stringsvc_nats(life, nc, endpoints, **broker)
        if config.amqp is not None:
            connection = life.close(await aio_pika.connect_robust(config.amqp))
            await serve_stringsvc_amqp(life, connection, endpoints, **broker)
        http = await serve_http(
            life,
            http_app,
            host=config.http_addr.host,
            port=config.http_addr.port,
            health=health,
            max_connections=config.max_connections,
            idle_timeout=config.idle_timeout,
        )
        grpc_port = await serve_grpc(life, grpc_server, address=str(config.grpc_addr))

        if config.register is not None:
            etcd = life.close(
                EtcdClient("http://" + config.register.partition("://")[2].rstrip("/"))
            )
            instance = registration(
                http_address=f"{http.addresses[0][0]}:{http.addresses[0][1]}",
                grpc_address=str(Address(config.grpc_addr.host, grpc_port)),
                instance_id=instance_id,
            )
            registrar = EtcdRegistrar(etcd, config.sd_prefix, instance)
            await life.register(registrar, f"{instance.address} in {config.register}")
        await life.wait_for_signal()


def main(argv: Sequence[str] | None = None) -> None:
    config = load(
        Settings,
        prefix="STRINGSVC",
        prog="python -m examples.stringsvc",
        argv=argv,
    )

    def announce(line: str) -> None:
        print(line, flush=True)

    # a bad setting found late (a short JWT secret), a port in use, an etcd that does not
    # answer: one line on stderr and exit 2 or 1, no traceback
    run(serve(config, announce=announce), name="stringsvc")


if __name__ == "__main__":
    main()
