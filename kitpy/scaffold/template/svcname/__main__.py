"""Run svcname: ``python -m svcname [--http-addr HOST:PORT] ...``.

``--help`` lists every option.

:func:`serve` is the whole life of the process: build observability, the
service and its endpoints (with middleware) and both transports; start them
under a :class:`~kitpy.lifecycle.Lifecycle`; wait for SIGINT/SIGTERM.  The
lifecycle then stops in order, announcing each step: NOT_SERVING (``/healthz``
503, gRPC health), ``--shutdown-drain`` seconds so load balancers notice,
refuse new connections while in-flight requests finish (``--shutdown-grace``),
flush spans.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from typing import Literal, cast

from kitpy.lifecycle import Lifecycle
from kitpy.lifecycle.grpc import serve_grpc
from kitpy.lifecycle.http import Health, serve_http

from .config import Config, parse_config
from .endpoints import make_endpoints
from .observability import build_observability
from .service import BasicService
from .transport_grpc import make_grpc_server
from .transport_http import make_http_app


async def serve(config: Config, *, announce: Callable[[str], None] = print) -> None:
    """Run svcname with ``config`` until SIGINT or SIGTERM, then stop in order."""
    log_format = cast(Literal["json", "console"], config.log_format)
    obs = build_observability(log_format=log_format)
    endpoints = make_endpoints(BasicService(), middleware=obs.server_middleware())
    health = Health()
    http_app = make_http_app(
        endpoints,
        health=health,
        before=obs.http_server_before,
        error_handler=obs.server_error_handler,
        finalizer=obs.http_server_finalizer,
    )
    http_app.router.add_get("/metrics", obs.metrics_handler)
    grpc_server = make_grpc_server(
        endpoints,
        before=obs.grpc_server_before,
        error_handler=obs.server_error_handler,
        finalizer=obs.grpc_server_finalizer,
        reflection=config.grpc_reflection,
    )
    async with Lifecycle(
        name="svcname",
        drain=config.shutdown_drain,
        grace=config.shutdown_grace,
        announce=announce,
    ) as life:
        life.on_shutdown(obs.shutdown, "spans flushed")
        await serve_http(
            life, http_app, host=config.http_host, port=config.http_port, health=health
        )
        await serve_grpc(life, grpc_server, address=config.grpc_addr)
        await life.wait_for_signal()


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_config(argv)
    try:
        asyncio.run(serve(config, announce=lambda line: print(line, flush=True)))
    except OSError as exc:  # e.g. the address is in use
        sys.exit(f"svcname: {exc}")


if __name__ == "__main__":
    main()
