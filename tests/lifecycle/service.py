"""A tiny service for the lifecycle tests: HTTP and gRPC on port 0, held calls, a registrar.

``python -m tests.lifecycle.service`` runs it until SIGINT/SIGTERM, printing the
lifecycle's announcements (the signal test starts it as a child process).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from aiohttp import web

from kitpy.lifecycle import Lifecycle
from kitpy.lifecycle.grpc import serve_grpc
from kitpy.lifecycle.http import Health, serve_http
from kitpy.transport.grpc import GrpcServer

__all__ = ["ECHO", "Held", "RecordingRegistrar", "Running", "running"]

ECHO = "/lifecycle.Test/Echo"
"""A unary gRPC method on raw bytes: echoes them, holding ``b"hold"`` until released."""


class Held:
    """Calls that wait for the test: :meth:`wait` until :attr:`release` is set."""

    def __init__(self) -> None:
        self.waiting = 0
        self.release = asyncio.Event()
        self._arrived = asyncio.Condition()

    async def wait(self) -> None:
        async with self._arrived:
            self.waiting += 1
            self._arrived.notify_all()
        await self.release.wait()

    async def until_waiting(self, n: int) -> None:
        """Return once ``n`` calls are held (bounded)."""
        async with asyncio.timeout(10), self._arrived:
            await self._arrived.wait_for(lambda: self.waiting >= n)


@dataclass
class RecordingRegistrar:
    """A registrar (kitpy.sd.Registrar) that records its calls in ``log``."""

    log: list[str] = field(default_factory=list)
    fail: bool = False

    async def register(self) -> None:
        self.log.append("register")

    async def deregister(self) -> None:
        self.log.append("deregister")
        if self.fail:
            raise ConnectionError("registry unreachable")

    async def __aenter__(self) -> RecordingRegistrar:
        await self.register()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.deregister()


def make_app(health: Health, held: Held) -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        if request.query.get("hold"):
            await held.wait()
        return web.json_response({"hello": "world"})

    app = web.Application()
    app.router.add_get("/hello", hello)
    app.router.add_get("/healthz", health.handle)
    return app


def make_grpc_server(held: Held) -> GrpcServer:
    async def echo(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        if request == b"hold":
            await held.wait()
        return request

    def add(servicer: object, server: grpc.aio.Server) -> None:
        handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(echo)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("lifecycle.Test", {"Echo": handler}),)
        )

    server = GrpcServer()
    server.add_service("lifecycle.Test", add, None)
    return server


@dataclass
class Running:
    """The started service: its lifecycle, addresses and the held calls."""

    life: Lifecycle
    http_url: str
    grpc_addr: str
    held: Held


@contextlib.asynccontextmanager
async def running(
    *,
    announce: Callable[[str], None],
    drain: float = 0.0,
    grace: float = 5.0,
    registrar: RecordingRegistrar | None = None,
) -> AsyncIterator[Running]:
    """Start the service under a Lifecycle; the stop runs when the block exits."""
    held = Held()
    health = Health()
    async with Lifecycle(name="tiny", drain=drain, grace=grace, announce=announce) as life:
        life.on_shutdown(lambda: None, "telemetry flushed")
        http = await serve_http(life, make_app(health, held), port=0, health=health)
        port = await serve_grpc(life, make_grpc_server(held), address="127.0.0.1:0")
        if registrar is not None:
            await life.register(registrar, "tiny in the test registry")
        yield Running(life, str(http.url), f"127.0.0.1:{port}", held)


async def main() -> None:
    async with running(announce=lambda line: print(line, flush=True), drain=0.2) as service:
        await service.life.wait_for_signal()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
