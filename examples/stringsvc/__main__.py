"""Run stringsvc: ``python -m examples.stringsvc [--http-addr HOST:PORT] ...``.

:func:`serve` is the whole life of the process, in three steps:

1. build: the service, its endpoints (with middleware), the transports' apps;
2. start every component, then wait for SIGINT/SIGTERM;
3. stop in reverse dependency order: report NOT_SERVING, stop accepting and
   drain the servers (in-flight requests finish within the grace period), then
   close what the endpoints use (clients, exporters).

New components (gRPC server, metrics/tracing exporters, service registration)
slot into the same three steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Sequence

from kitpy.transport.http import start_app, wait_for_signal

from .config import Config, parse_config
from .endpoints import make_endpoints
from .service import BasicStringService
from .transport_http import Health, make_http_app


async def serve(config: Config, *, announce: Callable[[str], None] = print) -> None:
    """Run stringsvc with ``config`` until SIGINT or SIGTERM, then shut down cleanly."""
    # 1. Build.
    endpoints = make_endpoints(BasicStringService())
    health = Health()
    http_app = make_http_app(endpoints, health=health)

    # 2. Start, then wait for a signal.  Every started component is stopped in `finally`.
    async with contextlib.AsyncExitStack() as running:
        http = await start_app(
            http_app,
            host=config.http_host,
            port=config.http_port,
            grace_period=config.shutdown_grace,
        )
        running.push_async_callback(http.stop)  # (3b) refuse new requests, drain in-flight
        running.callback(health.set_serving, False)  # (3a) runs first: report NOT_SERVING
        announce(f"stringsvc: HTTP listening on {http.url}")

        signal_received = await wait_for_signal()
        announce(f"stringsvc: {signal_received.name} received, shutting down")
    # 3. The exit stack has stopped everything, last started first.
    announce("stringsvc: stopped")


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_config(argv)
    try:
        asyncio.run(serve(config, announce=lambda line: print(line, flush=True)))
    except OSError as exc:  # e.g. the address is in use
        sys.exit(f"stringsvc: {exc}")


if __name__ == "__main__":
    main()
