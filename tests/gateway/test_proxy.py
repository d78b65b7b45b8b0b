"""The reverse proxy (kitpy.gateway.proxy) on real sockets: aiohttp upstreams on 127.0.0.1,
the gateway on start_app, an aiohttp client.

Upstreams count the requests that reach them, so a test can tell a retry from a relay, and
every wait is bounded (``asyncio.timeout``; the client session has a 30 s total timeout).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from kitpy.circuitbreaker import CircuitBreaker, ConsecutiveFailures, State
from kitpy.gateway import BadGateway, UpstreamPool, reverse_proxy, upstream_session
from kitpy.resilience import RetryBudget
from kitpy.sd import FixedInstancer, Instance
from kitpy.transport.http import RunningApp, start_app

MiB = 1024 * 1024
UpstreamHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Upstream:
    """An upstream instance: its address and how many requests reached it."""

    address: str
    hits: int = 0


class Rig:
    """Starts upstreams, pools and gateways for one test and stops them all after it."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.release = asyncio.Event()  # hanging upstreams wait for it
        self._apps: list[RunningApp] = []
        self._pools: list[UpstreamPool] = []

    async def serve(self, app: web.Application) -> URL:
        running = await start_app(app, host="127.0.0.1", port=0, grace_period=1.0)
        self._apps.append(running)
        return running.url

    async def upstream(self, handler: UpstreamHandler) -> Upstream:
        async def counted(request: web.Request) -> web.StreamResponse:
            upstream.hits += 1
            return await handler(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", counted)
        url = await self.serve(app)
        upstream = Upstream(f"{url.host}:{url.port}")
        return upstream

    async def pool(self, addresses: Sequence[str], **options: Any) -> UpstreamPool:
        options.setdefault("name", "svc")
        pool = UpstreamPool(FixedInstancer(addresses), self.session, **options)
        self._pools.append(pool)
        pool.start()
        async with asyncio.timeout(5):
            await pool.wait_for(lambda instances: len(instances) == len(addresses))
        return pool

    async def gateway(
        self, pool: UpstreamPool, *, route: str = "/{tail:.*}", **options: Any
    ) -> URL:
        app = web.Application()
        app.router.add_route("*", route, reverse_proxy(pool, **options))
        return await self.serve(app)

    async def close(self) -> None:
        self.release.set()
        for running in reversed(self._apps):  # gateways first, then their upstreams
            await running.stop()
        for pool in self._pools:
            await pool.close()


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    session = upstream_session()
    the_rig = Rig(session)
    try:
        yield the_rig
    finally:
        await the_rig.close()
        await session.close()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


def dead_address() -> str:
    """An address nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"


# -- upstream handlers ---------------------------------------------------------------------


async def echo(request: web.Request) -> web.StreamResponse:
    """Answers what it received, and sets hop-by-hop headers the gateway must drop."""
    body = await request.read()
    payload = {
        "method": request.method,
        "target": request.raw_path,
        "headers": [[name, value] for name, value in request.headers.items()],
        "body": body.decode("latin-1"),
    }
    response = web.json_response(payload)
    response.headers.add("Set-Cookie", "a=1")
    response.headers.add("Set-Cookie", "b=2")
    response.headers["X-Kept"] = "yes"
    response.headers["Keep-Alive"] = "timeout=5"
    response.headers["Proxy-Authenticate"] = "Basic"
    response.headers["Trailer"] = "X-Sum"
    response.headers["Connection"] = "X-Up-Hop"
    response.headers["X-Up-Hop"] = "secret"
    return response


def answering(status: int, body: bytes = b"", content_type: str = "text/plain") -> UpstreamHandler:
    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.Response(status=status, body=body, content_type=content_type)

    return handler


async def resetting(request: web.Request) -> web.StreamResponse:
    """Reads the request, then drops the connection without answering."""
    await request.read()
    assert request.transport is not None
    request.transport.abort()
    return web.Response()


def hanging(rig: Rig) -> UpstreamHandler:
    async def handler(request: web.Request) -> web.StreamResponse:
        await rig.release.wait()
        return web.Response(text="too late")

    return handler


def one_strike(name: str, instance: Instance) -> CircuitBreaker:
    """A breaker any single failure opens: a test that it stays closed proves nothing counted."""
    return CircuitBreaker(policy=ConsecutiveFailures(1), reset_timeout=30, name=name)


async def drain(response: aiohttp.ClientResponse) -> None:
    """Read a streamed answer to its end."""
    while await response.content.read(MiB):
        pass


def received(payload: dict[str, Any], name: str) -> list[str]:
    return [value for key, value in payload["headers"] if key.lower() == name.lower()]


# -- round trips, headers, request ids -----------------------------------------------------


async def test_a_get_goes_through_with_hop_by_hop_headers_dropped_both_ways(
    rig: Rig, client: aiohttp.ClientSession
) -> None:
    up = await rig.upstream(echo)
    gw = await rig.gateway(await rig.pool([up.address]), timeout=5.0)

    headers = {
        "Connection": "keep-alive, X-Hop",
        "X-Hop": "per-connection",
        "Keep-Alive": "timeout=9",
        "TE": "trailers",
        "Proxy-Authorization": "Basic c2VjcmV0",
        "Upgrade": "h2c",
        "X-Forwarded-For": "203.0.113.9",
        "X-Forwarded-Proto": "https",
        "X-Request-Id": "caller-id-1",
        "X-Custom": "kept",
    }
    quiet = ("User-Agent", "Accept-Encoding", "Accept")  # the caller sends none of these
    async with client.get(
        gw / "users" % {"q": "a b"}, headers=headers, skip_auto_headers=quiet
    ) as response:
        assert response.status == 200
        payload = await response.json()
        assert response.headers["X-Request-Id"] == "caller-id-1"
        assert response.headers["X-Kept"] == "yes"
        assert response.headers.getall("Set-Cookie") == ["a=1", "b=2"]
        for dropped in ("Keep-Alive", "Proxy-Authenticate", "Trailer", "X-Up-Hop"):
            assert dropped not in response.headers
        assert "x-up-hop" not in response.headers.get("Connection", "").lower()

    assert payload["method"] == "GET"
    assert payload["target"] == "/users?q=a+b"
    for dropped in ("X-Hop", "Keep-Alive", "TE", "Proxy-Authorization", "Upgrade"):
        assert received(payload, dropped) == [], dropped
    assert received(payload, "X-Custom") == ["kept"]
    assert received(payload, "X-Forwarded-For") == ["203.0.113.9, 127.0.0.1"]
    assert received(payload, "X-Forwarded-Proto") == ["http"]  # the gateway's edge, not the claim
    assert received(payload, "X-Forwarded-Host") == [f"{gw.host}:{gw.port}"]
    assert received(payload, "Host") == [up.address]
    assert received(payload, "X-Request-Id") == ["caller-id-1"]
    (budget,) = received(payload, "X-Timeout-Ms")
    assert 4000 < int(budget) <= 5000
    for added in quiet:  # so the gateway's aiohttp must not add them either
        assert received(payload, added) == [], added


async def test_a_post_body_and_content_type_go_through_and_a_request_id_is_made(
    rig: Rig, client: aiohttp.ClientSession
) -> None:
    up = await rig.upstream(echo)
    gw = await rig.gateway(await rig.pool([up.address]))

    async with client.post(
        gw / "items", data=b'{"s": "hi"}', headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 200
        payload = await response.json()
        request_id = response.headers["X-Request-Id"]
    assert payload["method"] == "POST"
    assert payload["body"] == '{"s": "hi"}'
    assert received(payload, "Content-Type") == ["application/json"]
    assert received(payload, "Content-Length") == ["11"]
    assert request_id
    assert received(payload, "X-Request-Id") == [request_id]

    async with client.post(gw / "items", data=b"x") as response:  # ids differ per request
        assert response.headers["X-Request-Id"] not in ("", request_id)


async def test_the_caller_can_shorten_the_deadline_but_not_lengthen_it(
    rig: Rig, client: aiohttp.ClientSession
) -> None:
    up = await rig.upstream(echo)
    gw = await rig.gateway(await rig.pool([up.address]), timeout=2.0)

    async with client.get(gw / "x", headers={"X-Timeout-Ms": "300"}) as response:
        (budget,) = received(await response.json(), "X-Timeout-Ms")
        assert 200 < int(budget) <= 300
    async with client.get(gw / "x", headers={"X-Timeout-Ms": "999999"}) as response:
        (budget,) = received(await response.json(), "X-Timeout-Ms")
        assert 1500 < int(budget) <= 2000
    async with client.get(gw / "x", headers={"X-Timeout-Ms": "soon"}) as response:
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "INVALID_ARGUMENT"
    assert up.hits == 2


async def test_head_keeps_the_length_and_sends_no_body(
    rig: Rig, client: aiohttp.ClientSession
) -> None:
    up = await rig.upstream(answering(200, b"0123456789"))
    gw = await rig.gateway(await rig.pool([up.address]))

    async with client.head(gw / "file") as response:
        assert response.status == 200
        assert response.headers["Content-Length"] == "10"
        assert await response.read() == b""


async def test_compressed_bodies_arrive_decoded_upstream_and_relay_as_sent_downstream(
    rig: Rig, client: aiohttp.ClientSession
) -> None:
    packed = gzip.compress(b"hello " * 100)

    async def gzipped(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        assert "Content-Encoding" not in request.headers
        assert body == b"hello " * 100
        return web.Response(body=packed, headers={"Content-Encoding": "gzip"})

    up = await rig.upstream(gzipped)
    gw = await rig.gateway(await rig.pool([up.address]))

    async with client.post(
        gw / "z", data=packed, headers={"Content-Encoding": "gzip"}, auto_decompress=False
    ) as response:
        assert response.status == 200
        assert response.headers["Content-Encoding"] == "gzip"
        assert await response.read() == packed  # the very bytes, not re-encoded


# -- paths ------------------------------------------------------------------------------------


async def test_the_route_prefix_is_stripped_and_the_rest_passes_still_encoded(
    rig: Rig, client: aiohttp.ClientSession
) -> None:
    up = await rig.upstream(echo)
    gw = await rig.gateway(await rig.pool([up.address]), strip_prefix="/api/")

    cases = {
        "/api/users/7?x=1&y=%20": "/users/7?x=1&y=%20",
        "/api/a%2Fb": "/a%2Fb",
        "/api": "/",
        "/api?x=1": "/?x=1",
    }
    for path, target in cases.items():
        async with client.get(URL(f"{gw}{path}", encoded=True)) as response:
            assert response.status == 200, path
            assert (await response.json())["target"] == target
    assert up.hits == len(cases)


@pytest.mark.parametrize("path", ["/apix/users", "/other"])
async def test_a_path_outside_the_prefix_is_not_forwarded(
    rig: Rig, client: aiohttp.ClientSession, path: str
) -> None:
    up = await rig.upstream(echo)
    gw = await rig.gateway(await rig.pool([up.address]), strip_prefix="/api")

    async with client.get(URL(f"{gw}{path}", encoded=True)) as response:
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "NOT_FOUND"
    assert up.hits == 0


@pytest.mark.parametrize("path", ["/api/public/../admin", "/api/public/%2e%2e/admin", "/api/./x"])
async def test_a_path_with_dot_segments_is_refused(
    rig: Rig, client: aiohttp.ClientSession, path: str
) -> None:
    up = await rig.upstream(echo)
    gw = await rig.gateway(await rig.pool([up.address]), strip_prefix="/api")

    async with client.get(URL(f"{gw}{path}", encoded=True)) as response:
        assert response.status == 400
        body = await response.json()
        assert body["error"] == {
            "code": "INVALID_ARGUMENT",
            "message": "the path may not contain '.' or '..' segments",
        }
    assert up.hits == 0


@pytest.mark.parametrize("path", ["/api/v1.2/file.json", "/api/.well-known/x", "/api/a..b"])
async def test_dots_inside_a_segment_are_forwarded(
    rig: Rig, client: aiohttp.ClientSession, path: str
) -> None:
    up = await rig.upstream(echo)
    gw = await rig.gateway(await rig.pool([up.address]), strip_prefix="/api")

    async with client.get(URL(f"{gw}{path}", encoded=True)) as response:
        assert response.status == 200
        assert (await response.json())["target"] == path.removeprefix("/api")
    assert up.hits == 1


# -- bodies: limits and streaming ------------------------------------------------------------


async def test_a_declared_body_over_the_limit_is_refused_before_any_instance_sees_it(
    rig: Rig, client: aiohttp.ClientSession
) -> None:
    up = await rig.upstream(echo)
    gw = await rig.gateway(await rig.pool([up.address]), max_body_size=1000)

    async with client.post(gw / "x", data=b"x" * 1001) as response:
        assert response.status == 413
        body = await response.json()
        assert body["error"] == {
            "code": "INVALID_ARGUMENT",
            "message": "request body is larger than the limit of 1000 bytes",
        }
        assert response.headers["X-Request-Id"]
    async with client.post(gw / "x", data=b"x" * 1000) as response:
        assert response.status == 200
    assert up.hits == 1


async def test_a_chunked_body_over_the_limit_is_cut_off_with_413(
    rig: Rig, client: aiohttp.ClientSession
) -> None:
    seen: list[int] = []
    done = asyncio.Event()

    async def counting(request: web.Request) -> web.StreamResponse:
        size = 0
        try:
            async for chunk in request.content.iter_any():
                size += len(chunk)
        finally:
            seen.append(size)
            done.set()
        return web.Response(text="read it all")

    up = await rig.upstream(counting)
    gw = await rig.gateway(await rig.pool([up.address]), max_body_size=MiB)

    async def body() -> AsyncIterator[bytes]:
        block = b"y" * 65536
        for _ in range(64):  # 4 MiB, no Content-Length
            yield block

    async with client.post(gw / "x", data=body()) as response:
        assert response.status == 413
        assert (await response.json())["error"]["code"] == "INVALID_ARGUMENT"
    async with asyncio.timeout(5):
        await done.wait()
    assert seen[0] <= MiB  # the instance never got more than the limit


async def _upload(
    client: aiohttp.ClientSession, url: URL, size: int, block: bytes
) -> tuple[int, dict[str, Any]]:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(size // len(block)):
            yield block

    async with client.put(url, data=body()) as response:
        return response.status, await response.json()


async def test_a_100_mib_upload_streams_through_in_bounded_memory(
    rig: Rig, client: aiohttp.ClientSession
) -> None:
    async def digest(request: web.Request) -> web.StreamResponse:
        size, crc = 0, 0
        async for chunk in request.content.iter_any():
            size += len(chunk)
            crc = zlib.crc32(chunk, crc)
        return web.json_response({"size": size, "crc": crc})

    up = await rig.upstream(digest)
    gw = await rig.gateway(await rig.pool([up.address]), max_body_size=200 * MiB, timeout=60)
    block = bytes(range(256)) * 4096  # 1 MiB
    expected_crc = 0
    for _ in range(100):
        expected_crc = zlib.crc32(block, expected_crc)

    tracemalloc.start()
    started = time.monotonic()
    try:
        async with asyncio.timeout(60):
            status, answer = await _upload(client, gw / "blob", 100 * MiB, block)
    finally:
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()

    assert status == 200
    assert answer == {"size": 100 * MiB, "crc": expected_crc}
    # client, gateway and upstream share this process: all three together stay far below
    # the body's 100 MiB (measured ~2 MiB)
    assert peak < 32 * MiB, f"peak {peak / MiB:.1f} MiB in {elapsed:.1f}s"
    print(f"upload: 100 MiB in {elapsed:.2f}s, traced peak {peak / MiB:.2f} MiB")


async def test_a_100_mib_download_streams_through_in_bounded_memory(
    rig: Rig, client: aiohttp.ClientSession
) -> None:
    block = bytes(range(256)) * 4096  # 1 MiB

    async def large(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = 100 * MiB
        await response.prepare(request)
        for _ in range(100):
            await response.write(block)
        await response.write_eof()
        return response

    up = await rig.upstream(large)
    gw = await rig.gateway(await rig.pool([up.address]), timeout=60)
    expected_crc = 0
    for _ in range(100):
        expected_crc = zlib.crc32(block, expected_crc)

    tracemalloc.start()
    started = time.monotonic()
    size, crc = 0, 0
    try:
        async with asyncio.timeout(60), client.get(gw / "blob") as response:
            assert response.status == 200
            assert response.headers["Content-Length"] == str(100 * MiB)
            async for chunk in response.content.iter_chunked(65536):
                size += len(chunk)
                crc = zlib.crc32(chunk, crc)
    finally:
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()

    assert (size, crc) == (100 * MiB, expected_crc)
    assert peak < 32 * MiB, f"peak {peak / MiB:.1f} MiB in {elapsed:.1f}s"
    print(f"download: 100 MiB in {elapsed:.2f}s, traced peak {peak / MiB:.2f} MiB")


# -- relayed answers -------------------------------------------------------------------------


async def test_an_upstream_404_is_relayed_as_it_came(
    rig: Rig, client: aiohttp.ClientSession
) -> None:
    page = b"<html><body>no such page, from the upstream</body></html>"
    up = await rig.upstream(answering(404, page, "text/html"))
    pool = await rig.pool([up.address])
    gw = await rig.gateway(pool)

    for _ in range(8):  # a client fault: never retried, never trips the breaker
        async with client.get(gw / "missing") as response:
            assert response.status == 404
            assert response.headers["Content-Type"] == "text/html"
            assert await response.read() == page
    assert up.hits == 8
    assert [b.state for b in pool.breakers.values()] == [State.CLOSED]


# -- balancing, retries, breakers ------------------------------------------------------------


async def test_p2c_spreads_concurrent_requests_over_both_instances(
    rig: Rig, client: aiohttp.ClientSession
) -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.05)
        return web.Response(text="ok")

    a, b = await rig.upstream(slow), await rig.upstream(slow)
    gw = await rig.gateway(await rig.pool([a.address, b.address]))

    async def one() -> int:
        async with client.get(gw / "x") as response:
            await response.read()
            return response.status

    async with asyncio.timeout(20):
        for _ in range(3):
            statuses = await asyncio.gather(*(one() for _ in range(20)))
            assert statuses == [200] * 20
    assert a.hits + b.hits == 60
    # with two instances P2C compares both on every pick: concurrent requests split evenly
    assert min(a.hits, b.hits) >= 24, (a.hits, b.hits)


async def test_a_dead_instance_costs_a_get_nothing_but_a_retry(
    rig: Rig, client: aiohttp.ClientSession
) -> None:
    live = await rig.upstream(echo)
    pool = await rig.pool([dead_address(), live.address])
    gw = await rig.gateway(pool)

    for _ in range(10):
        async with client.get(gw / "x") as response:
            assert response.status == 200
    assert live.hits == 10


async def test_a_post_that_never_reached_an_instance_goes_to_another(
    rig: Rig, client: aiohttp.ClientSession
) -> None:
    live = await rig.upstream(echo)
    gw = await rig.gateway(await rig.pool([dead_address(), live.address]))

    for _ in range(10):  # connection refused: nothing was sent, so any method may move on
        async with client.post(gw / "x", data=b"payload") as response:
            assert response.status == 200
            assert (await response.json())["body"] == "payload"
    assert live.hits == 10


async def test_a_post_that_reached_an_instance_is_never_sent_again(
    rig: Rig, client: aiohttp.ClientSession
) -> None:
    broken = await rig.upstream(resetting)
    gw = await rig.gateway(await rig.pool([broken.address]))

    async with client.post(gw / "x", data=b"once") as response:
        assert response.status == 502
        assert await response.json() == {
            "error": {
                "code": "UNAVAILABLE",
                "message": "an instance of 'svc' failed the request (ServerDisconnectedError)",
            }
        }
        assert response.headers["X-Request-Id"]
    assert broken.hits == 1

    live = await rig.upstream(echo)
    gw = await rig.gateway(await rig.pool([broken.address, live.address], name="two"))
    statuses = []
    for _ in range(10):
        async with client.post(gw / "x", data=b"once") as response:
            statuses.append(response.status)
    assert set(statuses) <= {200, 502}
    assert broken.hits - 1 + live.hits == 10  # each POST reached exactly one instance
    assert statuses.count(502) == broken.hits - 1


async def test_a_reset_get_goes_to_the_other_instance_never_back(
    rig: Rig, client: aiohttp.ClientSession
) -> None:
    a, b = await rig.upstream(resetting), await rig.upstream(resetting)
    gw = await rig.gateway(await rig.pool([a.address, b.address]))

    async with client.get(gw / "x") as response:
        assert response.status == 502
        assert (await response.json())["error"]["code"] == "UNAVAILABLE"
    # aiohttp resends an idempotent request once on a fresh connection when its connection
    # closes (RFC 9112, 9.3.1: meant for stale keep-alive connections); then the gateway
    # moves on to the other instance, and never comes back
    assert (a.hits, b.hits) == (2, 2)


async def test_retries_stop_at_the_budget_and_at_retries(
    rig: Rig, client: aiohttp.ClientSession
) -> None:
    bad = answering(502, b"bad gateway, says the instance")

    a, b = await rig.upstream(bad), await rig.upstream(bad)
    gw = await rig.gateway(await rig.pool([a.address, b.address]))
    async with client.get(gw / "x") as response:  # retried once, then relayed
        assert response.status == 502
        assert await response.read() == b"bad gateway, says the instance"
    assert (a.hits, b.hits) == (1, 1)

    spent = RetryBudget(ratio=0.0, min_per_second=0.0)
    c, d = await rig.upstream(bad), await rig.upstream(bad)
    gw = await rig.gateway(await rig.pool([c.address, d.address], name="spent", budget=spent))
    async with client.get(gw / "x") as response:
        assert response.status == 502
        assert await response.read() == b"bad gateway, says the instance"
    assert c.hits + d.hits == 1  # no budget, no retry

    e, f = await rig.upstream(bad), await rig.upstream(bad)
    gw = await rig.gateway(await rig.pool([e.address, f.address], name="none"), retries=0)
    async with client.get(gw / "x") as response:
        assert response.status == 502
    assert e.hits + f.hits == 1


async def test_a_503_answer_sends_a_get_to_the_other_instance_until_the_breaker_opens(
    rig: Rig, client: aiohttp.ClientSession
) -> None:
    sick = await rig.upstream(answering(503, b"overloaded"))
    live = await rig.upstream(echo)

    def three_strikes(name: str, instance: Instance) -> CircuitBreaker:
        return CircuitBreaker(policy=ConsecutiveFailures(3), reset_timeout=60, name=name)

    pool = await rig.pool([sick.address, live.address], breaker=three_strikes, failure_penalty=0.0)
    gw = await rig.gateway(pool)
    for _ in range(30):
        async with client.get(gw / "x") as response:
            assert response.status == 200
    assert sick.hits == 3  # then its breaker opened and it was skipped
    assert live.hits == 30
    states = {instance.address: b.state for instance, b in pool.breakers.items()}
    assert states == {sick.address: State.OPEN, live.address: State.CLOSED}


async def test_relayed_5xx_open_the_breaker_then_the_caller_gets_503_without_a_call(
    rig: Rig, client: aiohttp.ClientSession
) -> None:
    failing = await rig.upstream(answering(500, b"kaput"))

    def three_strikes(name: str, instance: Instance) -> CircuitBreaker:
        return CircuitBreaker(policy=ConsecutiveFailures(3), reset_timeout=30, name=name)

    gw = await rig.gateway(await rig.pool([failing.address], breaker=three_strikes))
    for _ in range(3):  # a 500 is relayed (not retried), and counted
        async with client.post(gw / "x", data=b"x") as response:
            assert response.status == 500
            assert await response.read() == b"kaput"
    started = time.monotonic()
    async with client.get(gw / "x") as response:
        assert response.status == 503
        assert await response.json() == {
            "error": {
                "code": "UNAVAILABLE",
                "message": "no instance of 'svc' is available: their circuit breakers are open",
            }
        }
        assert int(response.headers["Retry-After"]) >= 29
    assert time.monotonic() - started < 0.5
    assert failing.hits == 3


async def test_with_every_instance_dead_the_caller_gets_502_then_503_quickly(
    rig: Rig, client: aiohttp.ClientSession
) -> None:
    gw = await rig.gateway(await rig.pool([dead_address(), dead_address()]))

    answers: list[tuple[int, str]] = []
    while not answers or answers[-1][0] != 503:  # the breakers open after 5 failures each
        assert len(answers) < 12, answers
        started = time.monotonic()
        async with client.get(gw / "x") as response:
            body = await response.json()
            answers.append((response.status, body["error"]["code"]))
        assert time.monotonic() - started < 0.5
    assert len(answers) >= 4
    assert set(answers[:-1]) == {(502, "UNAVAILABLE")}
    assert answers[-1] == (503, "UNAVAILABLE")
    assert body["error"]["message"].endswith("their circuit breakers are open")

    empty = await rig.gateway(await rig.pool([], name="nobody"))
    async with client.get(empty / "x") as response:
        assert response.status == 503
        assert await response.json() == {
            "error": {"code": "UNAVAILABLE", "message": "no instance of 'nobody' is available"}
        }


# -- deadlines ---------------------------------------------------------------------------------


async def test_a_hanging_upstream_costs_the_caller_its_deadline_and_no_more(
    rig: Rig, client: aiohttp.ClientSession
) -> None:
    stuck = await rig.upstream(hanging(rig))

    def two_strikes(name: str, instance: Instance) -> CircuitBreaker:
        return CircuitBreaker(policy=ConsecutiveFailures(2), reset_timeout=30, name=name)

    pool = await rig.pool([stuck.address], breaker=two_strikes)
    gw = await rig.gateway(pool, timeout=0.5)

    for budget, headers in ((0.5, {}), (0.2, {"X-Timeout-Ms": "200"})):
        started = time.monotonic()
        async with client.get(gw / "x", headers=headers) as response:
            elapsed = time.monotonic() - started
            assert response.status == 504
            assert await response.json() == {
                "error": {
                    "code": "DEADLINE_EXCEEDED",
                    "message": "no complete answer from 'svc' within the deadline",
                }
            }
        assert budget <= elapsed < budget + 0.4, elapsed
    assert stuck.hits == 2
    assert [b.state for b in pool.breakers.values()] == [State.OPEN]  # timeouts count

    async with client.get(gw / "x", headers={"X-Timeout-Ms": "0"}) as response:
        assert response.status == 504
    assert stuck.hits == 2


async def test_an_answer_that_stalls_midway_is_cut_off_at_the_deadline(
    rig: Rig, client: aiohttp.ClientSession
) -> None:
    async def stalling(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = 1000
        await response.prepare(request)
        await response.write(b"x" * 100)
        await rig.release.wait()
        return response

    up = await rig.upstream(stalling)
    gw = await rig.gateway(await rig.pool([up.address]), timeout=0.4)

    started = time.monotonic()
    async with client.get(gw / "x") as response:
        assert response.status == 200  # the answer had begun: it can only be cut short
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    assert time.monotonic() - started < 0.4 + 0.3


async def test_a_caller_that_leaves_midway_is_not_the_instances_fault(
    rig: Rig, client: aiohttp.ClientSession
) -> None:
    finished = asyncio.Event()
    block = b"z" * MiB

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        try:
            for _ in range(1000):
                await response.write(block)
        except ConnectionError:
            pass
        finally:
            finished.set()
        return response

    up = await rig.upstream(endless)

    pool = await rig.pool([up.address], breaker=one_strike)
    gw = await rig.gateway(pool, timeout=20)

    async with client.get(gw / "x") as response:
        await response.content.readexactly(3 * MiB)
        response.close()  # the caller hangs up
    async with asyncio.timeout(10):
        await finished.wait()  # the gateway stopped reading from the instance
    assert [b.state for b in pool.breakers.values()] == [State.CLOSED]
    async with client.get(gw / "x", headers={"X-Timeout-Ms": "200"}) as response:
        assert response.status == 200


# -- construction --------------------------------------------------------------------------


async def test_a_session_that_keeps_cookies_is_refused() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match="keeps cookies"):
            UpstreamPool(FixedInstancer(["127.0.0.1:1"]), session)


async def test_options_are_checked(rig: Rig) -> None:
    pool = await rig.pool([])
    with pytest.raises(ValueError, match="timeout"):
        reverse_proxy(pool, timeout=0)
    with pytest.raises(ValueError, match="retries"):
        reverse_proxy(pool, retries=-1)
    with pytest.raises(ValueError, match="strip_prefix"):
        reverse_proxy(pool, strip_prefix="api")
    assert BadGateway.status == 502


async def test_a_caller_that_leaves_midway_through_its_upload_is_not_the_instances_fault(
    rig: Rig,
) -> None:
    got: list[int] = []
    started, done = asyncio.Event(), asyncio.Event()

    async def reading(request: web.Request) -> web.StreamResponse:
        started.set()
        size = 0
        try:
            async for chunk in request.content.iter_any():
                size += len(chunk)
        except Exception:  # the gateway cut the upload off: expected
            pass
        finally:
            got.append(size)
            done.set()
        return web.Response(text="ok")

    up = await rig.upstream(reading)

    pool = await rig.pool([up.address], breaker=one_strike)
    gw = await rig.gateway(pool, max_body_size=10 * MiB)

    _reader, writer = await asyncio.open_connection(gw.host, gw.port)
    writer.write(
        b"PUT /x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"10000\r\n"
        + b"u" * 65536
        + b"\r\n"
    )
    await writer.drain()
    async with asyncio.timeout(5):
        await started.wait()  # the upload reached the instance
    writer.close()  # and the caller hangs up halfway
    async with asyncio.timeout(5):
        await done.wait()
    assert got[0] < 10 * MiB
    assert [b.state for b in pool.breakers.values()] == [State.CLOSED]


async def test_a_caller_too_slow_to_send_its_body_gets_408_and_the_instance_no_blame(
    rig: Rig,
) -> None:
    up = await rig.upstream(echo)
    pool = await rig.pool([up.address], breaker=one_strike)
    gw = await rig.gateway(pool, timeout=0.3)

    reader, writer = await asyncio.open_connection(gw.host, gw.port)
    started = time.monotonic()
    writer.write(b"PUT /x HTTP/1.1\r\nHost: gw\r\nContent-Length: 1000\r\n\r\n" + b"t" * 10)
    await writer.drain()
    try:
        async with asyncio.timeout(5):
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            body = json.loads(await reader.readexactly(length))
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 408 ")
    assert body == {
        "error": {
            "code": "DEADLINE_EXCEEDED",
            "message": "the request body did not arrive within the deadline",
        }
    }
    assert time.monotonic() - started < 0.3 + 0.4
    assert up.hits == 1
    assert [b.state for b in pool.breakers.values()] == [State.CLOSED]


async def test_a_caller_too_slow_to_take_the_answer_is_cut_off_without_blaming_the_instance(
    rig: Rig, client: aiohttp.ClientSession
) -> None:
    block = b"w" * MiB

    async def firehose(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        try:
            for _ in range(200):
                await response.write(block)
        except ConnectionError:
            pass
        return response

    up = await rig.upstream(firehose)
    pool = await rig.pool([up.address], breaker=one_strike)
    gw = await rig.gateway(pool, timeout=0.5)

    async with client.get(gw / "x") as response:
        await response.content.readexactly(MiB)
        await asyncio.sleep(1.0)  # stop reading past the deadline: the gateway's writes block
        async with asyncio.timeout(10):
            with pytest.raises(aiohttp.ClientPayloadError):
                await drain(response)
    assert [b.state for b in pool.breakers.values()] == [State.CLOSED]
