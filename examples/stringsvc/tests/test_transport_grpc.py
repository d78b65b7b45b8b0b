"""stringsvc over gRPC on loopback: round trips, health, the CLI, generated code, HTTP -> gRPC."""

from __future__ import annotations

import asyncio
import filecmp
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import grpc
import grpc.aio
import pytest
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from kitpy import Code, Context, Endpoint, GenericMiddleware, KitError
from kitpy.endpoint import Req, Resp
from kitpy.errors import DeadlineExceeded, InvalidArgument, error_class, from_code
from kitpy.transport.http import start_app

from .. import cli
from ..endpoints import Endpoints, make_endpoints
from ..service import BasicStringService
from ..transport_grpc import SERVICE, make_grpc_client, make_grpc_server
from ..transport_http import make_http_app, make_http_client

EXAMPLE = Path(__file__).resolve().parents[1]
ROOT = EXAMPLE.parents[1]


@asynccontextmanager
async def grpc_stringsvc(endpoints: Endpoints) -> AsyncIterator[str]:
    """Serve ``endpoints`` over gRPC on 127.0.0.1 (port 0); yield ``host:port``."""
    server = make_grpc_server(endpoints)
    port = await server.start("127.0.0.1:0")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        async with asyncio.timeout(10):
            await server.stop(grace=1.0)


async def test_uppercase_and_count_over_grpc() -> None:
    async with (
        grpc_stringsvc(make_endpoints(BasicStringService())) as target,
        grpc.aio.insecure_channel(target) as channel,
    ):
        svc = make_grpc_client(channel)
        ctx = Context().with_timeout(5.0)
        assert await svc.uppercase(ctx, "hello") == "HELLO"
        assert await svc.count(ctx, "héllo") == 5
        with pytest.raises(InvalidArgument) as info:
            await svc.uppercase(ctx, "")
    assert info.value.message == "empty string"


async def test_client_middleware_wraps_each_endpoint() -> None:
    seen: list[object] = []

    def record(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        async def endpoint(ctx: Context, request: Req) -> Resp:
            seen.append(request)
            return await next(ctx, request)

        return endpoint

    async with (
        grpc_stringsvc(make_endpoints(BasicStringService())) as target,
        grpc.aio.insecure_channel(target) as channel,
    ):
        svc = make_grpc_client(channel, middleware=record)
        await svc.uppercase(Context(), "a")
        await svc.count(Context(), "bb")
    assert [type(r).__name__ for r in seen] == ["UppercaseRequest", "CountRequest"]


async def test_cli_calls_a_running_service_over_grpc_and_http(
    capsys: pytest.CaptureFixture[str],
) -> None:
    endpoints = make_endpoints(BasicStringService())
    http = await start_app(make_http_app(endpoints), host="127.0.0.1", port=0)
    try:
        async with grpc_stringsvc(endpoints) as target:
            http_addr = f"127.0.0.1:{http.addresses[0][1]}"
            runs = [
                ["uppercase", "hello", "--transport", "grpc", "--addr", target],
                ["count", "go kit", "--transport", "grpc", "--addr", target],
                ["uppercase", "hello", "--transport", "http", "--addr", http_addr],
                ["uppercase", "", "--transport", "grpc", "--addr", target],
                ["uppercase", "", "--transport", "http", "--addr", http_addr],
            ]
            codes = [await asyncio.to_thread(cli.main, argv) for argv in runs]
    finally:
        await http.stop()
    out, err = capsys.readouterr()
    assert codes == [0, 0, 0, 1, 1]
    assert out.split() == ["HELLO", "6", "HELLO"]
    assert err.splitlines() == ["INVALID_ARGUMENT: empty string"] * 2


def test_generated_code_is_current(tmp_path: Path) -> None:
    """``make proto`` would produce exactly the committed files."""
    argv = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-Iexamples/stringsvc/pb={EXAMPLE}",
        f"--python_out={tmp_path}",
        f"--pyi_out={tmp_path}",
        f"--grpc_python_out={tmp_path}",
        str(EXAMPLE / "stringsvc.proto"),
    ]  # the same as `make proto`, written to tmp_path
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    generated = tmp_path / "examples" / "stringsvc" / "pb"
    names = sorted(p.name for p in generated.iterdir())
    assert names == ["stringsvc_pb2.py", "stringsvc_pb2.pyi", "stringsvc_pb2_grpc.py"]
    for name in names:
        assert filecmp.cmp(generated / name, EXAMPLE / "pb" / name, shallow=False), (
            f"examples/stringsvc/pb/{name} is stale: run `make proto`"
        )


# -- HTTP -> gRPC: an HTTP stringsvc whose endpoints call another stringsvc over gRPC ----


def backend_behaviour(seen: list[float | None]) -> GenericMiddleware:
    """Backend middleware: ``raise:CODE`` raises that code, ``slow`` sleeps; records deadlines."""

    def middleware(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        async def endpoint(ctx: Context, request: Req) -> Resp:
            s: str = getattr(request, "s", "")
            seen.append(ctx.time_remaining())
            if s.startswith("raise:"):
                code = Code[s.removeprefix("raise:")]
                raise from_code(code, f"backend says {code.name}")
            if s == "slow":
                await asyncio.sleep(5)
            return await next(ctx, request)

        return endpoint

    return middleware


@asynccontextmanager
async def http_to_grpc_chain(seen: list[float | None]) -> AsyncIterator[Endpoints]:
    """HTTP client -> HTTP stringsvc -> gRPC client -> gRPC stringsvc; yield the HTTP client."""
    backend = make_endpoints(BasicStringService(), middleware=backend_behaviour(seen))
    async with (
        grpc_stringsvc(backend) as target,
        grpc.aio.insecure_channel(target) as channel,
    ):
        front = await start_app(make_http_app(make_grpc_client(channel)), host="127.0.0.1", port=0)
        try:
            async with aiohttp.ClientSession() as session:
                yield make_http_client(session, str(front.url))
        finally:
            await front.stop()


async def test_http_to_grpc_chain_keeps_every_error_code() -> None:
    seen: list[float | None] = []
    async with http_to_grpc_chain(seen) as client:
        ctx = Context().with_timeout(10.0)
        assert await client.uppercase(ctx, "chain") == "CHAIN"
        with pytest.raises(InvalidArgument, match="empty string"):
            await client.uppercase(ctx, "")
        for code in (c for c in Code if c is not Code.OK):
            with pytest.raises(KitError) as info:
                await client.uppercase(ctx, f"raise:{code.name}")
            assert type(info.value) is error_class(code), code
            assert info.value.message == f"backend says {code.name}"


async def test_http_to_grpc_chain_carries_the_deadline() -> None:
    seen: list[float | None] = []
    async with http_to_grpc_chain(seen) as client:
        async with asyncio.timeout(10):
            for _ in range(5):  # on a loaded machine the budget may run out before the backend
                with pytest.raises(DeadlineExceeded):
                    await client.uppercase(Context().with_timeout(0.3), "slow")
                if seen:
                    break
    backend_budget = seen[-1]
    assert backend_budget is not None
    # The HTTP budget, less the hops, reached the gRPC server.  Both hops round the budget
    # they send *up* (X-Timeout-Ms to a whole ms, grpc-timeout to a whole unit), which on
    # a fast machine can outweigh the time spent on the way: allow 2 ms for it.
    assert 0 < backend_budget < 0.3 + 0.002


async def test_reflection_lists_the_service_and_can_be_turned_off() -> None:
    endpoints = make_endpoints(BasicStringService())
    listed: dict[bool, list[str] | str] = {}
    for reflection in (True, False):
        server = make_grpc_server(endpoints, reflection=reflection)
        port = await server.start("127.0.0.1:0")
        try:
            listed[reflection] = await asyncio.to_thread(list_services, f"127.0.0.1:{port}")
        finally:
            await server.stop(grace=1.0)
    assert SERVICE in listed[True]
    assert listed[False] == "UNIMPLEMENTED"


def list_services(target: str) -> list[str] | str:
    """The services a server's reflection lists (as grpcurl does), or the error code's name."""
    with grpc.insecure_channel(target) as channel:
        try:
            return list(ProtoReflectionDescriptorDatabase(channel).get_services())
        except grpc.RpcError as err:
            code: grpc.StatusCode = getattr(err, "code", lambda: grpc.StatusCode.UNKNOWN)()
            return str(code.name)
