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

from kitpy.transport.http.connections import Connections, default_max_connections

__all__ = ["RunningApp", "run", "serve", "start_app", "wait_for_signal"]

# Seconds RunningApp.stop keeps open connections after closing the listener, when any is open:
# a client sends its request right after connecting, so a connection accepted just before the
# close may still have its first request on the wire.
_FIRST_REQUEST_WAIT = 0.1

DEFAULT_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)

# What aiohttp's RequestHandler takes (the rest of runner_options is the AppRunner's).
_HANDLER_OPTIONS = frozenset(
    {
        "tcp_keepalive",
        "logger",
        "access_log_class",
        "access_log",
        "access_log_format",
        "debug",
        "max_line_size",
        "max_headers",
        "max_field_size",
        "lingering_time",
        "read_bufsize",
        "auto_decompress",
        "timeout_ceil_threshold",
    }
)


class RunningApp:
    """An application listening on a socket; :meth:`stop` shuts it down gracefully.

    ``connections`` is its :class:`~kitpy.transport.http.connections.Connections`
    (``open``, ``refused``).
    """

    __slots__ = ("connections", "runner")

    def __init__(self, runner: web.AppRunner, connections: Connections) -> None:
        self.runner = runner
        self.connections = connections

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The ``(host, port)`` pairs it listens on (the real port when asked for port 0)."""
        return [self.connections.address]

    @property
    def url(self) -> URL:
        """``http://host:port`` of the first listening address."""
        host, port = self.addresses[0]
        return URL.build(scheme="http", host=host, port=port)

    def drain(self) -> None:
        """Keep serving, but close each connection after its next response (Connection: close)."""
        self.connections.drain()

    async def stop_accepting(self) -> None:
        """Close the listening socket: new connections are refused, open ones go on."""
        await self.connections.stop_listening()

    async def stop(self) -> None:
        """Refuse new connections, let in-flight requests finish (up to the grace period).

        Requests already on the wire -- sent on a connection accepted just before
        the listener closed -- get 0.1 s from that close to arrive and start
        before idle connections are closed.
        """
        await self.stop_accepting()
        self.connections.drain()
        await self.connections.settle(_FIRST_REQUEST_WAIT)
        await self.runner.cleanup()
        self.connections.flush_logs()


async def start_app(
    app: web.Application,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    grace_period: float = 10.0,
    max_connections: int | None = None,
    idle_timeout: float = 60.0,
    backlog: int = 128,
    **runner_options: Any,
) -> RunningApp:
    """Start serving ``app`` on ``host:port`` (``port=0`` picks a free port).

    ``grace_period`` bounds how long :meth:`RunningApp.stop` waits for requests in
    flight.  ``max_connections`` caps the connections open at once (default:
    :func:`~kitpy.transport.http.connections.default_max_connections`, three
    quarters of the open-file limit); one more is answered 503 and closed.
    ``idle_timeout`` closes a connection that has sent no request for that
    long: both a keep-alive connection between requests and a new one that has
    not finished sending its headers.  ``host`` is resolved to one address (the
    first the resolver gives).  ``runner_options`` go to
    :class:`aiohttp.web.AppRunner` and each connection's handler (e.g.
    ``access_log=None``, ``max_field_size=8190``).
    """
    if "keepalive_timeout" in runner_options:
        raise TypeError("start_app takes idle_timeout= (seconds), not keepalive_timeout=")
    runner = web.AppRunner(app, shutdown_timeout=grace_period, **runner_options)
    await runner.setup()
    try:
        assert runner.server is not None  # set up above
        handler_options = {
            key: value for key, value in runner_options.items() if key in _HANDLER_OPTIONS
        }
        connections = Connections(
            runner.server,
            max_connections=max_connections or default_max_connections(),
            keepalive_timeout=idle_timeout,
            **handler_options,
        )
        await connections.listen(host, port, backlog=backlog)
    except BaseException:
        await runner.cleanup()
        raise
    return RunningApp(runner, connections)


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
