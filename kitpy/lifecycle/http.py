"""The lifecycle's HTTP adapter: serve an aiohttp app, and a ``/healthz`` it flips.

:func:`serve_http` starts an application with
:func:`kitpy.transport.http.start_app` and hands it to a
:class:`~kitpy.lifecycle.Lifecycle`, which on the way out turns its
:class:`Health` to 503 and answers every request from then on with
``Connection: close`` (so keep-alive clients move on instead of sending on a
connection about to close), closes its listener after the drain pause, and
gives requests in flight the lifecycle's ``grace`` to finish::

    health = Health()
    app = web.Application()
    add_routes(app, {"POST /uppercase": server, "GET /healthz": health.handle})
    async with Lifecycle(name="stringsvc") as life:
        http = await serve_http(life, app, host="127.0.0.1", port=8080, health=health)
        await life.wait_for_signal()

Needs the ``http`` extra: ``pip install "kitpy[http]"``.
"""

from __future__ import annotations

from typing import Any

from kitpy._extras import require

require("aiohttp", extra="http")

from aiohttp import web

from kitpy.lifecycle.core import Lifecycle
from kitpy.transport.http import RunningApp, start_app

__all__ = ["Health", "serve_http"]


class Health:
    """The ``GET /healthz`` handler: 200 SERVING until :meth:`set_serving` (False), then 503.

    Route it with ``add_routes(app, {"GET /healthz": health.handle})`` and pass
    it to :func:`serve_http`; the lifecycle flips it when shutdown starts, so
    load balancers stop sending new requests while the ones in flight finish.

    Example::

        health = Health()
        health.set_serving(False)     # GET /healthz -> 503 {"status": "NOT_SERVING"}
    """

    __slots__ = ("serving",)

    def __init__(self, *, serving: bool = True) -> None:
        self.serving = serving

    def set_serving(self, serving: bool) -> None:
        """Report SERVING (True) or NOT_SERVING (False) from now on."""
        self.serving = serving

    async def handle(self, request: web.Request) -> web.Response:
        """The aiohttp handler."""
        if self.serving:
            return web.json_response({"status": "SERVING"})
        return web.json_response({"status": "NOT_SERVING"}, status=503)


class _HttpServer:
    """A started app as the lifecycle stops it (see :class:`kitpy.lifecycle.Server`)."""

    def __init__(self, running: RunningApp, health: Health | None, path: str) -> None:
        self._running = running
        self._health = health
        self._path = path

    async def set_not_serving(self) -> str | None:
        # keep answering, but send each open connection's next response with
        # Connection: close, so clients take their next request elsewhere
        self._running.drain()
        if self._health is None:
            return None
        self._health.set_serving(False)
        return f"{self._path} 503"

    async def stop_accepting(self) -> None:
        await self._running.stop_accepting()

    async def finish(self) -> None:
        # the listener is closed; stop gives requests already on the wire their moment
        # (0.1 s) before it closes idle connections
        await self._running.stop()


async def serve_http(
    life: Lifecycle,
    app: web.Application,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    health: Health | None = None,
    health_path: str = "/healthz",
    **runner_options: Any,
) -> RunningApp:
    """Start serving ``app`` on ``host:port`` under ``life``; return the running app.

    ``port=0`` picks a free port (``running.url`` has the real one).  Announces
    ``HTTP listening on http://host:port``.  On the way out ``health`` (served
    at ``health_path``, for the announcement) turns NOT_SERVING, then the
    listener closes and requests in flight get ``life.grace`` seconds.
    ``runner_options`` go to :func:`~kitpy.transport.http.start_app`.
    """
    running = await start_app(app, host=host, port=port, grace_period=life.grace, **runner_options)
    life.add(_HttpServer(running, health, health_path), f"HTTP listening on {running.url}")
    return running
