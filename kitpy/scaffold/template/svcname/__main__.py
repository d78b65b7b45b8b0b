"""Run svcname: ``python -m svcname [--http-addr HOST:PORT] ...``.

``--help`` lists every setting; each is also read from the environment
(``SVCNAME_HTTP_ADDR``) and a TOML file (``--config``), see ``config.py``.

:func:`serve` is the whole life of the process: build observability, the
service and its endpoints (with middleware) and both transports; start them
under a :class:`~kitpy.lifecycle.Lifecycle`; wait for SIGINT/SIGTERM.  The
lifecycle then stops in order, announcing each step: NOT_SERVING (``/healthz``
503, gRPC health), ``--shutdown-drain`` seconds so load balancers notice,
refuse new connections while in-flight requests finish (``--shutdown-grace``),
flush spans.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import nats
from kitpy.config import load
from kitpy.lifecycle import Lifecycle
from kitpy.lifecycle.grpc import serve_grpc
from kitpy.lifecycle.http import Health, serve_http
from kitpy.lifecycle.run import run
from kitpy.log import StdlibBridge
from kitpy.ratelimit import ConcurrencyLimiter, LoopLag

from .config import Settings
from .endpoints import make_endpoints
from .events import PublishingService, ensure_stream
from .observability import Observability, build_observability
from .service import BasicService, Service
from .transport_grpc import make_grpc_server
from .transport_http import make_http_app


async def _admission(life: Lifecycle, config: Settings) -> ConcurrencyLimiter:
    """One pool of slots for every HTTP and gRPC request.

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
    """Run svcname with ``config`` until SIGINT or SIGTERM, then stop in order."""
    obs = build_observability(log_format=config.log_format, log_level=config.log_level)
    # aiohttp's, asyncio's and grpc's own log records come out as our JSON lines too
    bridge = StdlibBridge.install(obs.logger)
    try:
        await _serve(config, obs, announce)
    finally:
        bridge.uninstall()


async def _serve(config: Settings, obs: Observability, announce: Callable[[str], None]) -> None:
    async with Lifecycle(
        name="svcname",
        drain=config.shutdown_drain,
        grace=config.shutdown_grace,
        announce=announce,
    ) as life:
        life.on_shutdown(obs.shutdown, "spans flushed")
        svc: Service = BasicService()
        if config.events_nats is not None:  # opt-in: each Hello also publishes an event
            nc = life.close(await nats.connect(config.events_nats, name="svcname"))
            await ensure_stream(nc)
            svc = PublishingService.over_nats(svc, nc)
        endpoints = make_endpoints(svc, middleware=obs.server_middleware())
        admission = await _admission(life, config)
        health = Health()
        http_app = make_http_app(
            endpoints,
            health=health,
            before=obs.http_server_before,
            error_handler=obs.server_error_handler,
            finalizer=obs.http_server_finalizer,
            admission=admission,
        )
        http_app.router.add_get("/metrics", obs.metrics_handler)
        grpc_server = make_grpc_server(
            endpoints,
            before=obs.grpc_server_before,
            error_handler=obs.server_error_handler,
            finalizer=obs.grpc_server_finalizer,
            reflection=config.grpc_reflection,
            admission=admission,
        )
        await serve_http(
            life,
            http_app,
            host=config.http_addr.host,
            port=config.http_addr.port,
            health=health,
            max_connections=config.max_connections,
            idle_timeout=config.idle_timeout,
        )
        await serve_grpc(life, grpc_server, address=str(config.grpc_addr))
        await life.wait_for_signal()


def main(argv: Sequence[str] | None = None) -> None:
    config = load(
        Settings,
        prefix="SVCNAME",
        prog="python -m svcname",
        argv=argv,
    )

    def announce(line: str) -> None:
        print(line, flush=True)

    # a bad setting found late, a port in use: one line on stderr and exit 2 or 1, no traceback
    run(serve(config, announce=announce), name="svcname")


if __name__ == "__main__":
    main()
