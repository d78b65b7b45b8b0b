"""Run stringsvc: ``python -m examples.stringsvc [--http-addr HOST:PORT] ...`` (see ``--help``).

:func:`serve` is the whole life of the process, in three steps:

1. build: observability (logger, metrics registry, tracer provider), the
   service and its endpoints with their middleware, and -- with ``--proxy`` --
   the client stack that sends Uppercase to other instances;
2. start HTTP and gRPC, register in etcd (``--register``), wait for SIGINT/SIGTERM;
3. stop, in this order: report NOT_SERVING (``/healthz`` 503, gRPC health),
   deregister, wait ``--shutdown-drain`` so callers notice, stop accepting on
   both servers at once and let in-flight requests finish (``--shutdown-grace``),
   flush spans, and close client sessions and channels.

Each step is announced on stdout as it completes (``stringsvc: NOT_SERVING ...``,
``stringsvc: deregistered ...``, ...), so operators and tests can see the order.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Literal

import aiohttp
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from kitpy import GenericMiddleware, chain
from kitpy.auth import grpc_to_context, http_to_context
from kitpy.auth.jwt import jwt_parser
from kitpy.auth.jwt.jwks import JWKS
from kitpy.resilience import concurrency_limit
from kitpy.sd.etcd import EtcdClient, EtcdRegistrar
from kitpy.transport.http import start_app, wait_for_signal

from .config import Config, parse_config
from .endpoints import Endpoints, make_endpoints
from .observability import Observability, build_observability
from .proxy import open_proxy, registration
from .service import BasicStringService
from .transport_grpc import start_grpc_server
from .transport_http import Health, make_http_app

AUDIENCE = "stringsvc"
"""The ``aud`` claim a token must carry when authentication is on."""


def _log_format(config: Config) -> Literal["json", "console"]:
    if config.log_format == "auto":
        return "console" if sys.stdout.isatty() else "json"
    return "console" if config.log_format == "console" else "json"


class _DiscardSpans(SpanExporter):
    """Drops finished spans: traces still get ids (for logs and propagation), none are kept."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _observability(config: Config) -> Observability:
    exporter = None
    if config.otlp_endpoint is None and not config.print_spans:
        exporter = _DiscardSpans()
    return build_observability(
        log_format=_log_format(config),
        otlp_endpoint=config.otlp_endpoint,
        sample_ratio=config.trace_sample_ratio,
        span_exporter=exporter,
    )


@contextlib.asynccontextmanager
async def _authentication(
    config: Config, session: aiohttp.ClientSession
) -> AsyncIterator[GenericMiddleware | None]:
    """The JWT parser middleware when --jwt-secret or --jwks-url is given, else None."""
    if config.jwt_secret is not None:
        yield jwt_parser(config.jwt_secret.encode(), algorithms=["HS256"], audience=AUDIENCE)
    elif config.jwks_url is not None:
        keys = JWKS(config.jwks_url, session=session)
        try:
            yield jwt_parser(keys, algorithms=["RS256", "ES256", "EdDSA"], audience=AUDIENCE)
        finally:
            await keys.close()
    else:
        yield None


async def serve(config: Config, *, announce: Callable[[str], None] = print) -> None:
    """Run stringsvc with ``config`` until SIGINT or SIGTERM, then shut down cleanly."""
    obs = _observability(config)
    health = Health()
    # Everything entered here is closed in reverse order when serve() returns:
    # client sessions and channels last, after spans are flushed.
    async with contextlib.AsyncExitStack() as resources:
        session = await resources.enter_async_context(aiohttp.ClientSession())

        def flush_spans() -> None:  # runs before the session closes
            obs.shutdown()
            announce("stringsvc: spans flushed")

        resources.callback(flush_spans)
        auth = await resources.enter_async_context(_authentication(config, session))

        # 1. Build.  Server middleware, outermost first: span + log + metrics, then
        # the concurrency limit (one pool for all methods), then authentication.
        limit = concurrency_limit(config.max_in_flight, max_waiting=config.max_waiting)
        inner = limit if auth is None else chain(limit, auth)

        def server_middleware(method: str) -> GenericMiddleware:
            return chain(obs.server_middleware(method), inner)

        local = make_endpoints(BasicStringService())
        # This process's HTTP address as registered; with port 0 it is known once bound.
        own_address = [f"{config.http_host}:{config.http_port}"]
        if config.proxy is not None:
            proxied = await resources.enter_async_context(
                open_proxy(config, session=session, obs=obs, own_address=lambda: own_address[0])
            )
            local = Endpoints(uppercase_endpoint=proxied, count_endpoint=local.count_endpoint)
        endpoints = Endpoints(
            uppercase_endpoint=server_middleware("uppercase")(local.uppercase_endpoint),
            count_endpoint=server_middleware("count")(local.count_endpoint),
        )
        http_app = make_http_app(
            endpoints,
            health=health,
            before=(*obs.http_server_before, http_to_context),
            finalizer=obs.http_server_finalizer,
        )
        http_app.router.add_get("/metrics", obs.metrics_handler)

        # 2. Start; each stop step is pushed so that the exit stack runs them in order.
        async with contextlib.AsyncExitStack() as running:
            grpc_server, grpc_port = await start_grpc_server(
                endpoints,
                host=config.grpc_host,
                port=config.grpc_port,
                before=(*obs.grpc_server_before, grpc_to_context),
                finalizer=obs.grpc_server_finalizer,
            )
            try:
                http = await start_app(
                    http_app,
                    host=config.http_host,
                    port=config.http_port,
                    grace_period=config.shutdown_grace,
                )
            except BaseException:
                await grpc_server.stop(grace=0)
                raise

            async def stop_servers() -> None:  # (3c) both refuse new calls, then drain in flight
                announce(
                    "stringsvc: refusing new connections; in-flight requests get up to "
                    f"{config.shutdown_grace:g} s"
                )
                await asyncio.gather(http.stop(), grpc_server.stop(grace=config.shutdown_grace))
                announce("stringsvc: servers stopped, in-flight requests done")

            running.push_async_callback(stop_servers)
            http_host, http_port = http.addresses[0]
            own_address[0] = f"{http_host}:{http_port}"
            announce(f"stringsvc: HTTP listening on {http.url}")
            announce(f"stringsvc: gRPC listening on {config.grpc_host}:{grpc_port}")
            running.push_async_callback(asyncio.sleep, config.shutdown_drain)  # (3b) drain
            if config.register is not None:
                etcd = EtcdClient("http://" + config.register.partition("://")[2].rstrip("/"))
                instance = registration(
                    http_address=own_address[0],
                    grpc_address=f"{config.grpc_host}:{grpc_port}",
                )
                running.push_async_callback(etcd.close)
                registrar = EtcdRegistrar(etcd, config.sd_prefix, instance)
                await registrar.register()

                async def deregister() -> None:  # (3a') then: leave the registry
                    await registrar.deregister()
                    announce(f"stringsvc: deregistered from {config.register}")

                running.push_async_callback(deregister)
                announce(f"stringsvc: registered {instance.address} in {config.register}")

            async def not_serving() -> None:  # (3a) first: tell load balancers to go away
                health.set_serving(False)
                await grpc_server.health.enter_graceful_shutdown()
                announce("stringsvc: NOT_SERVING (/healthz 503, gRPC health NOT_SERVING)")

            running.push_async_callback(not_serving)
            received = await wait_for_signal()
            announce(f"stringsvc: {received.name} received, shutting down")
    announce("stringsvc: client sessions and channels closed")
    announce("stringsvc: stopped")


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_config(argv)
    try:
        asyncio.run(serve(config, announce=lambda line: print(line, flush=True)))
    except OSError as exc:  # e.g. the address is in use
        sys.exit(f"stringsvc: {exc}")


if __name__ == "__main__":
    main()
