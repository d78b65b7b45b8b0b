"""A test upstream that misbehaves on command: latency spikes, resets, partial responses, 5xx.

:class:`FaultyUpstream` is a raw aiohttp app on 127.0.0.1 (port 0) serving
``POST /upper`` (``{"s": "hi"}`` -> ``{"v": "HI", "by": name}``).  The test
flips its :class:`Fault` at any time with :meth:`FaultyUpstream.inject` and
:meth:`FaultyUpstream.heal`:

* ``LATENCY``  -- answer correctly, but only after ``latency`` seconds;
* ``RESET``    -- read the request, then abort the connection with a TCP RST;
* ``PARTIAL``  -- send a 200 with its headers and half the promised body, then close;
* ``ERRORS``   -- answer a 5xx (cycling through ``statuses``) with a non-kitpy body.

A fault hits each request with probability ``rate`` and, when ``count`` is
given, only the next ``count`` requests (a burst); given several faults, each
hit picks one of them at random.  The upstream counts every
request it receives (:attr:`FaultyUpstream.received`) and which of them it
spoiled, so tests can bound the load the client stack put on it from the
upstream's own books.
"""

from __future__ import annotations

import asyncio
import enum
import json
import random
import socket
import struct
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web

__all__ = ["Fault", "FaultyUpstream"]


class Fault(enum.Enum):
    """What the upstream does to the requests a fault hits."""

    NONE = "none"
    LATENCY = "latency"
    RESET = "reset"
    PARTIAL = "partial"
    ERRORS = "errors"


@dataclass
class FaultyUpstream:
    """One misbehaving instance; start with :meth:`start`, stop with :meth:`stop`."""

    name: str
    faults: tuple[Fault, ...] = ()
    rate: float = 1.0
    count: int | None = None
    latency: float = 1.0
    statuses: tuple[int, ...] = (503, 502)
    received: int = 0
    spoiled: Counter[Fault] = field(default_factory=Counter)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    _runner: web.AppRunner | None = field(default=None, repr=False)
    _port: int = 0

    @property
    def address(self) -> str:
        """``127.0.0.1:port`` once started."""
        return f"127.0.0.1:{self._port}"

    def inject(
        self,
        *faults: Fault,
        rate: float = 1.0,
        count: int | None = None,
        latency: float | None = None,
    ) -> None:
        """From now on, spoil requests with ``faults`` (each request with probability ``rate``)."""
        self.faults = tuple(f for f in faults if f is not Fault.NONE)
        self.rate, self.count = rate, count
        if latency is not None:
            self.latency = latency

    def heal(self) -> None:
        """Stop misbehaving."""
        self.inject()

    def _pick(self) -> Fault:
        faults = self.faults
        if not faults or self.rng.random() >= self.rate:
            return Fault.NONE
        if self.count is not None:
            if self.count <= 0:
                return Fault.NONE
            self.count -= 1
        fault = faults[0] if len(faults) == 1 else self.rng.choice(faults)
        self.spoiled[fault] += 1
        return fault

    async def _upper(self, request: web.Request) -> web.StreamResponse:
        self.received += 1
        fault = self._pick()
        s = (await request.json())["s"]
        body = json.dumps({"v": s.upper(), "by": self.name}).encode()
        if fault is Fault.LATENCY:
            await asyncio.sleep(self.latency)
        elif fault is Fault.RESET:
            transport = request.transport
            assert transport is not None
            sock: socket.socket | None = transport.get_extra_info("socket")
            if sock is not None:  # linger 0: close() sends RST instead of FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
            return web.Response()  # aiohttp finds the connection gone and drops this quietly
        elif fault is Fault.PARTIAL:
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.content_length = len(body)
            await response.prepare(request)
            await response.write(body[: len(body) // 2])
            transport = request.transport
            assert transport is not None
            transport.close()  # flushes what was written, then FIN: the body stops short
            return response
        elif fault is Fault.ERRORS:
            status = self.statuses[self.spoiled[fault] % len(self.statuses)]
            return web.Response(status=status, text="upstream trouble")
        return web.Response(body=body, content_type="application/json")

    async def start(self) -> None:
        """Listen on 127.0.0.1, port 0."""
        app = web.Application()
        app.router.add_post("/upper", self._upper)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop listening and drop open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
