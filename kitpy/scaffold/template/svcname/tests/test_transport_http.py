"""svcname over HTTP on a real socket (127.0.0.1, port 0)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from kitpy import Context, InvalidArgument
from kitpy.lifecycle.http import Health
from kitpy.transport.http import start_app

from ..endpoints import make_endpoints
from ..service import BasicService
from ..transport_http import make_http_app, make_http_client

JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    app = make_http_app(make_endpoints(BasicService()), health=Health())
    running = await start_app(app, host="127.0.0.1", port=0, grace_period=2.0)
    yield str(running.url).rstrip("/")
    await running.stop()


async def test_hello_route_and_errors(base_url: str) -> None:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.post(f"{base_url}/hello", data=b'{"name":"Ada"}', headers=JSON) as r:
            assert (r.status, await r.json()) == (200, {"message": "Hello, Ada!"})
        async with session.post(f"{base_url}/hello", data=b'{"name":""}', headers=JSON) as r:
            assert r.status == 400
            assert (await r.json())["error"]["code"] == "INVALID_ARGUMENT"
        async with session.post(f"{base_url}/hello", data=b"{not json", headers=JSON) as r:
            assert r.status == 400
        async with session.get(f"{base_url}/healthz") as r:
            assert (r.status, await r.json()) == (200, {"status": "SERVING"})
        async with session.get(f"{base_url}/nope") as r:  # add_fallback: JSON, not text
            assert (r.status, (await r.json())["error"]["code"]) == (404, "NOT_FOUND")


async def test_http_client_is_a_service(base_url: str) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        svc = make_http_client(session, base_url)
        ctx = Context().with_timeout(5.0)
        assert await svc.hello(ctx, "Ada") == "Hello, Ada!"
        with pytest.raises(InvalidArgument):
            await svc.hello(ctx, "")
