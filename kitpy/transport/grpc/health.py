"""The standard gRPC health service, whose ``Watch`` streams end when the server stops.

:class:`HealthServicer` is grpcio-health-checking's asyncio servicer (``Check``,
``set``, ``enter_graceful_shutdown`` are its own) with its own ``Watch``: the
same answers -- the current status at once, then every change -- but once
:meth:`~HealthServicer.enter_graceful_shutdown` has run, each open Watch
writes NOT_SERVING and ends with status OK.  grpcio's Watch never ends by
itself, so one open Watch held a graceful stop until its grace period ran out.
A Watch that starts after that gets the status and ends at once.

:class:`~kitpy.transport.grpc.GrpcServer` serves one as :attr:`GrpcServer.health`::

    health = HealthServicer()
    await health.set("stringsvc.v1.StringService", health_pb2.HealthCheckResponse.SERVING)
    await health.enter_graceful_shutdown()   # watchers get NOT_SERVING; their streams end
"""

from __future__ import annotations

import asyncio

from grpc.aio import ServicerContext
from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio

__all__ = ["HealthServicer"]

_Status = health_pb2.HealthCheckResponse
_Context = ServicerContext[health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse]


class HealthServicer(health_aio.HealthServicer):
    """grpcio's asyncio health servicer with Watch streams that end at graceful shutdown.

    Example::

        health = HealthServicer()
        await health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    """

    def __init__(self) -> None:
        super().__init__()
        # what Watch reports: the same statuses grpcio keeps for Check, set through the
        # same public methods (grpcio's own copy is private)
        self._statuses: dict[str, int] = {"": _Status.SERVING}
        self._changed = asyncio.Event()  # set and replaced on every change
        self._ending = False

    @property
    def shutting_down(self) -> bool:
        """Whether :meth:`enter_graceful_shutdown` has run (statuses are final)."""
        return self._ending

    async def set(self, service: str, status: int) -> None:
        """Set ``service``'s status (ignored after :meth:`enter_graceful_shutdown`)."""
        await super().set(service, status)
        if not self._ending:
            self._statuses[service] = status
            self._notify()

    async def enter_graceful_shutdown(self) -> None:
        """Every service NOT_SERVING for good; every open Watch reports it and ends."""
        await super().enter_graceful_shutdown()
        if not self._ending:
            self._ending = True
            for service in self._statuses:
                self._statuses[service] = _Status.NOT_SERVING
            self._notify()

    async def Watch(self, request: health_pb2.HealthCheckRequest, context: _Context) -> None:
        """Stream ``request.service``'s status: now, on every change, and end at shutdown."""
        last: int | None = None
        while True:
            changed = self._changed  # taken first: a change while writing is not missed
            status = self._statuses.get(request.service, _Status.SERVICE_UNKNOWN)
            if status != last:
                await context.write(_Status(status=status))
                last = status
            if self._ending:
                return
            await changed.wait()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
