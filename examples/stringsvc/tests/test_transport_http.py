"""stringsvc over HTTP on a real socket, and the runnable module."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from kitpy import Context, Endpoint, InvalidArgument
from kitpy.endpoint import Req, Resp
from kitpy.lifecycle.http import Health
from kitpy.transport.http import DEFAULT_MAX_BODY_SIZE, start_app

from ..endpoints import make_endpoints
from ..service import BasicStringService
from ..transport_http import make_http_app, make_http_client

ROOT = Path(__file__).resolve().parents[3]
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def service() -> AsyncIterator[tuple[URL, Health, aiohttp.ClientSession]]:
    health = Health()
    app = make_http_app(make_endpoints(BasicStringService()), health=health)
    running = await start_app(app, host="127.0.0.1", port=0, grace_period=2.0)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield running.url, health, session
    await running.stop()


async def test_routes(service: tuple[URL, Health, aiohttp.ClientSession]) -> None:
    url, _, session = service
    async with session.post(url / "uppercase", data=b'{"s": "hello"}', headers=JSON) as resp:
        assert (resp.status, await resp.read()) == (200, b'{"v":"HELLO"}')
    async with session.post(url / "count", data=b'{"s": "hi"}', headers=JSON) as resp:
        assert (resp.status, await resp.read()) == (200, b'{"v":2}')
    async with session.post(url / "uppercase", data=b'{"s": ""}', headers=JSON) as resp:
        assert resp.status == 400
        assert await resp.json() == {
            "error": {"code": "INVALID_ARGUMENT", "message": "empty string"}
        }


async def test_bad_bodies_get_json_4xx(
    service: tuple[URL, Health, aiohttp.ClientSession],
) -> None:
    url, _, session = service
    async with session.post(url / "count", data=b'{"s": "x"}', headers={}) as resp:
        assert resp.status == 415
        assert (await resp.json())["error"]["code"] == "INVALID_ARGUMENT"
    big = b'{"s": "' + b"x" * DEFAULT_MAX_BODY_SIZE + b'"}'
    async with session.post(url / "count", data=big, headers=JSON) as resp:
        assert resp.status == 413
        assert (await resp.json())["error"]["code"] == "INVALID_ARGUMENT"


async def test_unmatched_requests_get_json_errors(
    service: tuple[URL, Health, aiohttp.ClientSession],
) -> None:
    url, _, session = service
    async with session.get(url / "nope") as resp:
        assert resp.status == 404
        assert await resp.json() == {
            "error": {"code": "NOT_FOUND", "message": "no route for GET /nope"}
        }
    async with session.get(url / "uppercase") as resp:
        assert (resp.status, resp.headers["Allow"]) == (405, "POST")
        assert (await resp.json())["error"]["code"] == "UNIMPLEMENTED"


async def test_healthz_flips_to_not_serving(
    service: tuple[URL, Health, aiohttp.ClientSession],
) -> None:
    url, health, session = service
    async with session.get(url / "healthz") as resp:
        assert (resp.status, await resp.json()) == (200, {"status": "SERVING"})
    health.set_serving(False)
    async with session.get(url / "healthz") as resp:
        assert (resp.status, await resp.json()) == (503, {"status": "NOT_SERVING"})


async def test_http_client_is_a_string_service(
    service: tuple[URL, Health, aiohttp.ClientSession],
) -> None:
    url, _, session = service
    calls: list[object] = []

    def record(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        async def endpoint(ctx: Context, request: Req) -> Resp:
            calls.append(request)
            return await next(ctx, request)

        return endpoint

    svc = make_http_client(session, str(url) + "/", middleware=record)
    ctx = Context().with_timeout(5.0)
    assert await svc.uppercase(ctx, "go kit") == "GO KIT"
    assert await svc.count(ctx, "héllo") == 5
    with pytest.raises(InvalidArgument) as info:
        await svc.uppercase(ctx, "")
    assert info.value.message == "empty string"
    assert len(calls) == 3


async def test_module_serves_until_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "examples.stringsvc", "--http-addr", "127.0.0.1:0",
        "--grpc-addr", "127.0.0.1:0",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(30):
            line = (await proc.stdout.readline()).decode()
            assert line.startswith("stringsvc: HTTP listening on http://127.0.0.1:")
            url = URL(line.rsplit(" ", 1)[1].strip())
            async with aiohttp.ClientSession() as session:
                svc = make_http_client(session, str(url))
                assert await svc.uppercase(Context().with_timeout(5.0), "up") == "UP"
            proc.send_signal(signal.SIGTERM)
            rest = (await proc.stdout.read()).decode()
            assert await proc.wait() == 0
        assert "SIGTERM received" in rest
        assert "stopped" in rest
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
