"""Run svcname: ``python -m svcname [--http-addr HOST:PORT] ...``.

:func:`serve` is the whole life of the process, in three steps:

1. build: observability, the service, its endpoints (with middleware), the transports;
2. start every component, then wait for SIGINT/SIGTERM;
3. stop: report NOT_SERVING (``/healthz`` 503, gRPC health), wait
   ``--shutdown-drain`` seconds so load balancers notice, stop accepting on both
   servers and let in-flight requests finish (``--shutdown-grace``), flush spans.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Sequence
from typing import Literal, cast

from kitpy.transport.http import start_app, wait_for_signal

from .config import Config, parse_config, split_addr
from .endpoints import make_endpoints
from .observability import build_observability
from .service import BasicService
from .transport_grpc import start_grpc_server
from .transport_http import Health, make_http_app


async def serve(config: Config, *, announce: Callable[[str], None] = print) -> None:
    """Run svcname with ``config`` until SIGINT or SIGTERM, then shut down."""
    # 1. Build.
    log_format = cast(Literal["json", "console"], config.log_format)
    obs = build_observability(log_format=log_format)
    endpoints = make_endpoints(BasicService(), middleware=obs.server_middleware())
    health = Health()
    http_app = make_http_app(
        endpoints,
        health=health,
        before=obs.http_server_before,
        finalizer=obs.http_server_finalizer,
    )
    http_app.router.add_get("/metrics", obs.metrics_handler)
    http_host, http_port = split_addr(config.http_addr)
    grpc_host, grpc_port = split_addr(config.grpc_addr)
    grace = config.shutdown_grace

    # 2. Start, then wait for a signal.  The exit stack runs the stop steps last-pushed first.
    async with contextlib.AsyncExitStack() as running:
        running.callback(obs.shutdown)  # (3d) last: flush spans
        grpc_server, bound = await start_grpc_server(
            endpoints,
            host=grpc_host,
            port=grpc_port,
            before=obs.grpc_server_before,
            finalizer=obs.grpc_server_finalizer,
        )
        try:
            http = await start_app(http_app, host=http_host, port=http_port, grace_period=grace)
        except BaseException:
            await grpc_server.stop(grace=0)
            raise

        async def stop_servers() -> None:  # (3c) refuse new calls, let in-flight ones finish
            await asyncio.gather(http.stop(), grpc_server.stop(grace=grace))

        running.push_async_callback(stop_servers)
        running.push_async_callback(asyncio.sleep, config.shutdown_drain)  # (3b) let LBs notice

        async def not_serving() -> None:  # (3a) first: /healthz 503, gRPC health NOT_SERVING
            health.set_serving(False)
            await grpc_server.health.enter_graceful_shutdown()

        running.push_async_callback(not_serving)
        announce(f"svcname: HTTP listening on {http.url}")
        announce(f"svcname: gRPC listening on {grpc_host}:{bound}")

        signal_received = await wait_for_signal()
        announce(f"svcname: {signal_received.name} received, shutting down")
    announce("svcname: stopped")


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_config(argv)
    try:
        asyncio.run(serve(config, announce=lambda line: print(line, flush=True)))
    except OSError as exc:  # e.g. the address is in use
        sys.exit(f"svcname: {exc}")


if __name__ == "__main__":
    main()
