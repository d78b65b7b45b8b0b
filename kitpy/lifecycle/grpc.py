"""The lifecycle's gRPC adapter: serve a :class:`~kitpy.transport.grpc.GrpcServer`.

:func:`serve_grpc` starts the server and hands it to a
:class:`~kitpy.lifecycle.Lifecycle`, which on the way out turns its standard
health service NOT_SERVING (open health ``Watch`` streams end), refuses new
calls with UNAVAILABLE (safe to retry: they never started), and gives calls in
flight the lifecycle's ``grace`` to finish before grpc.aio stops::

    server = GrpcServer()
    server.add_service(SERVICE, pb_grpc.add_StringServiceServicer_to_server, servicer)
    async with Lifecycle(name="stringsvc") as life:
        port = await serve_grpc(life, server, address="127.0.0.1:8081")
        await life.wait_for_signal()

Needs the ``grpc`` extra: ``pip install "kitpy[grpc]"``.
"""

from __future__ import annotations

import asyncio

from kitpy.lifecycle.core import Lifecycle
from kitpy.transport.grpc import GrpcServer

__all__ = ["serve_grpc"]


class _GrpcServer:
    """A started GrpcServer as the lifecycle stops it (see :class:`kitpy.lifecycle.Server`)."""

    def __init__(self, server: GrpcServer, grace: float) -> None:
        self._server = server
        self._grace = grace
        self._stopping: asyncio.Task[None] | None = None

    async def set_not_serving(self) -> str:
        await self._server.set_not_serving()  # open health Watch streams end here
        return "gRPC health NOT_SERVING"

    async def stop_accepting(self) -> None:
        # GrpcServer.stop refuses new calls at once (UNAVAILABLE, safe to retry) and stops
        # grpc.aio once the calls in flight are done, so it runs on in a task finish() awaits.
        self._stopping = asyncio.create_task(self._server.stop(grace=self._grace))
        await asyncio.sleep(0)

    async def finish(self) -> None:
        if self._stopping is None:
            await self._server.stop(grace=self._grace)
        else:
            await self._stopping


async def serve_grpc(life: Lifecycle, server: GrpcServer, *, address: str = "127.0.0.1:0") -> int:
    """Start ``server`` on ``address`` (``host:port``) under ``life``; return the bound port.

    Port 0 picks a free port.  Announces ``gRPC listening on host:port``.  On
    the way out its health turns NOT_SERVING, then new calls are refused
    (UNAVAILABLE) and calls in flight get ``life.grace`` seconds; the listener
    closes once they are done.
    """
    port = await server.start(address)
    host = address.rpartition(":")[0]
    life.add(_GrpcServer(server, life.grace), f"gRPC listening on {host}:{port}")
    return port
