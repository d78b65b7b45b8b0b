"""What the gateway's application tests share: real upstreams, gateways on port 0, helpers.

:class:`GatewayRig` starts aiohttp upstreams that record what reached them, examples/stringsvc's
kitpy gRPC server, a raw ``grpc.aio`` stringsvc that records its metadata, and gateways served
with ``start_app`` on 127.0.0.1 port 0, and stops them all after the test (the ``rig`` fixture
in conftest.py).  Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import sys
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import grpc.aio
import jwt
from aiohttp import web
from google.protobuf import descriptor_pb2
from multidict import CIMultiDictProxy
from yarl import URL

from examples.stringsvc.endpoints import make_endpoints
from examples.stringsvc.pb import stringsvc_pb2 as pb
from examples.stringsvc.service import BasicStringService
from examples.stringsvc.transport_grpc import SERVICE, start_grpc_server
from kitpy.gateway import (
    Gateway,
    LiveRouteTable,
    Route,
    RouteTable,
    Upstream,
)
from kitpy.transport.http import start_app

UPPERCASE = f"{SERVICE}/Uppercase"
JSON = {"Content-Type": "application/json"}
SECRET = "the-callers-jwt-secret-32-bytes-or-more"
"""Signs the callers' tokens in these tests (HS256)."""
REPO = Path(__file__).resolve().parents[2]

UpstreamHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# -- the rig ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One request as an upstream received it."""

    method: str
    target: str
    headers: CIMultiDictProxy[str]


@dataclass
class HttpUpstream:
    """An aiohttp upstream: its address and the requests that reached it."""

    address: str = ""
    seen: list[Seen] = field(default_factory=list)


@dataclass
class GrpcUpstream:
    """A gRPC upstream: its address and the metadata of each call that reached it."""

    address: str = ""
    metadata: list[list[tuple[str, str | bytes]]] = field(default_factory=list)


async def answer_path(request: web.Request) -> web.StreamResponse:
    """The default upstream answer: the path and query it was asked for, as JSON."""
    return web.json_response({"target": request.raw_path})


class GatewayRig:
    """Starts upstreams and gateways for one test and stops them all after it."""

    def __init__(self, client: aiohttp.ClientSession) -> None:
        self.client = client
        self._stops: list[Callable[[], Awaitable[object]]] = []

    def on_close(self, stop: Callable[[], Awaitable[object]]) -> None:
        """Await ``stop()`` when the test ends (before what was started earlier is stopped)."""
        self._stops.append(stop)

    async def serve(self, app: web.Application, **runner_options: Any) -> URL:
        running = await start_app(app, host="127.0.0.1", port=0, grace_period=1.0, **runner_options)
        self._stops.append(running.stop)
        return running.url

    async def upstream(self, handler: UpstreamHandler = answer_path) -> HttpUpstream:
        """An aiohttp upstream answering every path with ``handler``, recording each request."""
        upstream = HttpUpstream()

        async def record(request: web.Request) -> web.StreamResponse:
            upstream.seen.append(Seen(request.method, request.raw_path, request.headers))
            return await handler(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", record)
        url = await self.serve(app)
        upstream.address = f"{url.host}:{url.port}"
        return upstream

    async def stringsvc(self, *, reflection: bool = True, **options: Any) -> str:
        """examples/stringsvc's gRPC server (kitpy Servers); ``options`` go to each Server."""
        server, port = await start_grpc_server(
            make_endpoints(BasicStringService()), port=0, reflection=reflection, **options
        )
        self._stops.append(lambda: server.stop(grace=0.5))
        return f"127.0.0.1:{port}"

    async def recording_stringsvc(self) -> GrpcUpstream:
        """A raw grpc.aio ``Uppercase`` (no reflection) that records each call's metadata."""
        upstream = GrpcUpstream()

        async def uppercase(
            request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
        ) -> bytes:
            upstream.metadata.append(list(context.invocation_metadata() or ()))
            text = pb.UppercaseRequest.FromString(request).s
            return pb.UppercaseResponse(v=text.upper()).SerializeToString()

        server = grpc.aio.server()
        handlers: dict[str, grpc.RpcMethodHandler[bytes, bytes]] = {
            "Uppercase": grpc.unary_unary_rpc_method_handler(uppercase)
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self._stops.append(lambda: server.stop(grace=0))
        upstream.address = f"127.0.0.1:{port}"
        return upstream

    async def gateway(
        self, routes: RouteTable | LiveRouteTable, **options: Any
    ) -> tuple[Gateway, URL]:
        """A started Gateway over ``routes`` (``options`` go to it), served on port 0 as
        ``python -m kitpy.gateway`` serves it: a caller hanging up cancels its request."""
        gateway = Gateway(routes, **options)
        await gateway.start()
        self._stops.append(gateway.close)
        return gateway, await self.serve(gateway.app(), handler_cancellation=True)

    async def close(self) -> None:
        for stop in reversed(self._stops):  # gateways first, then their upstreams
            async with asyncio.timeout(10):
                await stop()


def table(*routes: Route, **addresses: str) -> RouteTable:
    """A table of ``routes`` over upstreams given as ``name=address``."""
    return RouteTable(routes, [Upstream(name, addresses=(a,)) for name, a in addresses.items()])


def stringsvc_descriptor_set(directory: Path) -> str:
    """A FileDescriptorSet file for stringsvc.proto, as ``protoc --descriptor_set_out`` writes."""
    file = descriptor_pb2.FileDescriptorProto()
    pb.DESCRIPTOR.CopyToProto(file)
    path = directory / "stringsvc.binpb"
    path.write_bytes(descriptor_pb2.FileDescriptorSet(file=[file]).SerializeToString())
    return str(path)


def caller_token(sub: str = "ada", *, secret: str = SECRET, expires_in: float = 60) -> str:
    """A caller's HS256 token for ``sub``, expiring ``expires_in`` seconds from now."""
    return jwt.encode({"sub": sub, "exp": int(time.time() + expires_in)}, secret, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextlib.contextmanager
def no_resource_left_open() -> Iterator[None]:
    """Fail when the block leaves a session or connection open (a ResourceWarning once freed)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def replace(path: Path, text: str) -> None:
    """Write ``path`` atomically, so a poll never reads half of it."""
    new = path.with_suffix(".new")
    new.write_text(text)
    os.replace(new, path)


async def get(
    client: aiohttp.ClientSession, url: URL, headers: Mapping[str, str] | None = None
) -> tuple[int, CIMultiDictProxy[str], Any]:
    """GET ``url``: the status, the headers and the JSON body (or the text, if not JSON)."""
    async with client.get(url, headers=headers) as response:
        text = await response.text()
        body = json.loads(text) if response.content_type == "application/json" else text
        return response.status, response.headers, body


async def call_uppercase(
    client: aiohttp.ClientSession, url: URL, text: str, headers: Mapping[str, str] | None = None
) -> tuple[int, CIMultiDictProxy[str], Any]:
    """A Connect JSON call of stringsvc's Uppercase through the gateway at ``url``."""
    body = json.dumps({"s": text}).encode()
    async with client.post(url / UPPERCASE, data=body, headers={**JSON, **(headers or {})}) as r:
        return r.status, r.headers, await r.json(content_type=None)


@dataclass
class Exited:
    """How a process ended: its status and what it wrote."""

    status: int
    stdout: str
    stderr: str


async def run_module(module: str, *args: str, within: float) -> Exited:
    """Run ``python -m MODULE ARGS`` from the repository to its end, at most ``within`` seconds."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args,
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(within):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Exited(proc.returncode, out.decode(), err.decode())
