"""Run stringsvc: ``python -m examples.stringsvc [--http-addr HOST:PORT] ...`` (see ``--help``).

:func:`serve` is the whole life of the process.  It builds observability, the
service (with ``--proxy``, one that sends Uppercase to other instances) and its
endpoints with their middleware; starts HTTP and gRPC; registers in etcd
(``--register``); and waits for SIGINT/SIGTERM.  The :class:`~kitpy.lifecycle.Lifecycle`
then stops it in order, announcing each step on stdout (``stringsvc: NOT_SERVING
...``): health NOT_SERVING, deregister, ``--shutdown-drain`` seconds, refuse
new connections while in-flight requests finish (``--shutdown-grace``), flush
spans, close client sessions and channels.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Literal

import aio_pika
import aiohttp
import nats
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from kitpy import GenericMiddleware, chain
from kitpy.auth import grpc_to_context, http_to_context
from kitpy.auth.jwt import jwt_parser
from kitpy.auth.jwt.jwks import JWKS
from kitpy.lifecycle import Lifecycle
from kitpy.lifecycle.grpc import serve_grpc
from kitpy.lifecycle.http import Health, serve_http
from kitpy.ratelimit import concurrency_limit
from kitpy.sd.etcd import EtcdClient, EtcdRegistrar
from kitpy.tracing import message_server_before, message_server_finalizer

from .config import Config, parse_config
from .endpoints import make_endpoints
from .events import PublishingService, ensure_stream
from .observability import Observability, build_observability
from .proxy import ProxyingService, open_proxy, registration
from .service import BasicStringService, StringService
from .transport_amqp import serve_stringsvc_amqp
from .transport_grpc import make_grpc_server
from .transport_http import make_http_app
from .transport_nats import serve_stringsvc_nats

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
) -> AsyncIterator[tuple[GenericMiddleware, ...]]:
    """The JWT parser middleware when --jwt-secret or --jwks-url is given, else nothing."""
    if config.jwt_secret is not None:
        yield (jwt_parser(config.jwt_secret.encode(), algorithms=["HS256"], audience=AUDIENCE),)
    elif config.jwks_url is not None:
        keys = JWKS(config.jwks_url, session=session)
        try:
            yield (jwt_parser(keys, algorithms=["RS256", "ES256", "EdDSA"], audience=AUDIENCE),)
        finally:
            await keys.close()
    else:
        yield ()


async def serve(config: Config, *, announce: Callable[[str], None] = print) -> None:
    """Run stringsvc with ``config`` until SIGINT or SIGTERM, then shut down in order."""
    obs = _observability(config)
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
        # Server middleware, outermost first: span + log + metrics, the concurrency limit
        # (one pool for all methods), then authentication.
        limit = concurrency_limit(config.max_in_flight, max_waiting=config.max_waiting)
        endpoints = make_endpoints(svc, middleware=chain(obs.server_middleware(), limit, *auth))

        health = Health()
        http_app = make_http_app(
            endpoints,
            health=health,
            before=(*obs.http_server_before, http_to_context),
            error_handler=obs.server_error_handler,
            finalizer=obs.http_server_finalizer,
        )
        http_app.router.add_get("/metrics", obs.metrics_handler)
        grpc_server = make_grpc_server(
            endpoints,
            before=(*obs.grpc_server_before, grpc_to_context),
            error_handler=obs.server_error_handler,
            finalizer=obs.grpc_server_finalizer,
            reflection=config.grpc_reflection,
        )
        if nc is not None:  # subscribed before the HTTP and gRPC listeners announce
            await serve_stringsvc_nats(
                life,
                nc,
                endpoints,
                before=(message_server_before(obs.tracer, kind=SpanKind.SERVER),),
                error_handler=obs.server_error_handler,
                finalizer=(message_server_finalizer(),),
            )
        if config.amqp is not None:
            connection = life.close(await aio_pika.connect_robust(config.amqp))
            await serve_stringsvc_amqp(
                life,
                connection,
                endpoints,
                before=(message_server_before(obs.tracer, kind=SpanKind.SERVER),),
                error_handler=obs.server_error_handler,
                finalizer=(message_server_finalizer(),),
            )
        http = await serve_http(
            life, http_app, host=config.http_host, port=config.http_port, health=health
        )
        grpc_port = await serve_grpc(life, grpc_server, address=config.grpc_addr)

        if config.register is not None:
            etcd = life.close(
                EtcdClient("http://" + config.register.partition("://")[2].rstrip("/"))
            )
            instance = registration(
                http_address=f"{http.addresses[0][0]}:{http.addresses[0][1]}",
                grpc_address=f"{config.grpc_host}:{grpc_port}",
                instance_id=instance_id,
            )
            registrar = EtcdRegistrar(etcd, config.sd_prefix, instance)
            await life.register(registrar, f"{instance.address} in {config.register}")
        await life.wait_for_signal()


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_config(argv)
    try:
        asyncio.run(serve(config, announce=lambda line: print(line, flush=True)))
    except OSError as exc:  # e.g. the address is in use
        sys.exit(f"stringsvc: {exc}")


if __name__ == "__main__":
    main()
