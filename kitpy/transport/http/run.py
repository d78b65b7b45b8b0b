"""Run an aiohttp application with graceful shutdown.

:func:`start_app` listens and returns a :class:`RunningApp`; its
:meth:`~RunningApp.stop` shuts down gracefully: the listening socket closes at
once (new connections are refused), idle keep-alive connections close, requests
in flight get up to ``grace_period`` seconds to finish, and whatever is still
running after that is cancelled.  :func:`wait_for_signal` waits for SIGINT or
SIGTERM.  :func:`serve` / :func:`run` put the three together for a one-app
process; a process with several servers composes the parts itself::

    http = await start_app(app, host="127.0.0.1", port=8080)
    try:
        await wait_for_signal()
    finally:
        await http.stop()
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web
from yarl import URL

__all__ = ["RunningApp", "run", "serve", "start_app", "wait_for_signal"]

DEFAULT_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)


class RunningApp:
    """An application listening on a socket; :meth:`stop` shuts it down gracefully."""

    __slots__ = ("runner",)

    def __init__(self, runner: web.AppRunner) -> None:
        self.runner = runner

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The ``(host, port)`` pairs it listens on (the real port when asked for port 0)."""
        return [(str(addr[0]), int(addr[1])) for addr in self.runner.addresses]

    @property
    def url(self) -> URL:
        """``http://host:port`` of the first listening address."""
        host, port = self.addresses[0]
        return URL.build(scheme="http", host=host, port=port)

    async def stop(self) -> None:
        """Refuse new connections, let in-flight requests finish (up to the grace period)."""
        await self.runner.cleanup()


async def start_app(
    app: web.Application,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    grace_period: float = 10.0,
    **runner_options: Any,
) -> RunningApp:
    """Start serving ``app`` on ``host:port`` (``port=0`` picks a free port).

    ``grace_period`` bounds how long :meth:`RunningApp.stop` waits for requests in
    flight.  ``runner_options`` go to :class:`aiohttp.web.AppRunner` (e.g.
    ``access_log=None``).
    """
    runner = web.AppRunner(app, shutdown_timeout=grace_period, **runner_options)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return RunningApp(runner)


async def wait_for_signal(signals: Sequence[signal.Signals] = DEFAULT_SIGNALS) -> signal.Signals:
    """Wait until one of ``signals`` arrives (SIGINT, SIGTERM); return it.

    The handlers are installed on the running loop only while waiting.
    """
    loop = asyncio.get_running_loop()
    received: asyncio.Future[signal.Signals] = loop.create_future()

    def on_signal(sig: signal.Signals) -> None:
        if not received.done():
            received.set_result(sig)

    for sig in signals:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        return await received
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


async def serve(
    app: web.Application,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    grace_period: float = 10.0,
    signals: Sequence[signal.Signals] = DEFAULT_SIGNALS,
    on_start: Callable[[RunningApp], None] | None = None,
    **runner_options: Any,
) -> None:
    """Serve ``app`` until SIGINT/SIGTERM, then shut down gracefully.

    ``on_start`` is called once listening, e.g. to print the address.
    """
    running = await start_app(
        app, host=host, port=port, grace_period=grace_period, **runner_options
    )
    try:
        if on_start is not None:
            on_start(running)
        await wait_for_signal(signals)
    finally:
        await running.stop()


def run(app: web.Application, **options: Any) -> None:
    """``asyncio.run(serve(app, **options))``: the one-line ``main`` of a one-app service."""
    asyncio.run(serve(app, **options))
