"""svcname over gRPC on a real port (127.0.0.1, port 0), and the real process."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import aiohttp
import grpc.aio
import pytest
from kitpy import Context, InvalidArgument

from ..endpoints import make_endpoints
from ..service import BasicService
from ..transport_grpc import make_grpc_client, make_grpc_server
from ..transport_http import make_http_client

PROJECT = Path(__file__).resolve().parents[2]


async def test_hello_over_grpc() -> None:
    server = make_grpc_server(make_endpoints(BasicService()))
    port = await server.start("127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            svc = make_grpc_client(channel)
            ctx = Context().with_timeout(5.0)
            assert await svc.hello(ctx, "Ada") == "Hello, Ada!"
            with pytest.raises(InvalidArgument) as info:
                await svc.hello(ctx, "")
            assert info.value.message == "name must not be empty"
    finally:
        await server.stop(grace=1.0)


async def test_module_serves_both_transports_until_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "svcname",
        "--http-addr=127.0.0.1:0",
        "--grpc-addr=127.0.0.1:0",
        "--shutdown-drain=0",
        cwd=PROJECT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(30):
            addrs: dict[str, str] = {}
            while len(addrs) < 2:
                line = (await proc.stdout.readline()).decode()
                assert line, "the service exited before listening"
                if " listening on " in line:
                    transport, _, addr = line.partition(" listening on ")
                    addrs[transport.split()[-1]] = addr.strip()
            ctx = Context().with_timeout(10.0)
            async with aiohttp.ClientSession() as session:
                http_client = make_http_client(session, addrs["HTTP"])
                assert await http_client.hello(ctx, "web") == "Hello, web!"
                async with session.get(addrs["HTTP"].rstrip("/") + "/metrics") as resp:
                    assert "svcname_server_requests_total" in await resp.text()
            async with grpc.aio.insecure_channel(addrs["gRPC"]) as channel:
                assert await make_grpc_client(channel).hello(ctx, "rpc") == "Hello, rpc!"
            proc.send_signal(signal.SIGTERM)
            rest = (await proc.stdout.read()).decode()
            assert await proc.wait() == 0
        assert "SIGTERM received" in rest
        assert rest.rstrip().endswith("svcname: stopped")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
