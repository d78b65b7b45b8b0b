"""A Server's admission: a request holds its slot from the moment its headers are read.

Real aiohttp and grpc.aio servers on 127.0.0.1.  A client that sends its
headers and stalls its body is counted against the limit (it used to be
counted only once its body had arrived); the slot comes back when the request
ends, however it ends; overload sheds at once with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web

from kitpy import Context, Unavailable
from kitpy.ratelimit import ConcurrencyLimiter, LoopLag
from kitpy.transport import http as kit_http
from tests.waiting import until

from .grpc.harness import echo_client, echo_server, serving

JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True, slots=True)
class Echo:
    s: str


async def upper(ctx: Context, request: Echo) -> Echo:
    return Echo(request.s.upper())


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as client:
        yield client


async def serve_http(limiter: ConcurrencyLimiter) -> kit_http.RunningApp:
    app = web.Application()
    server = kit_http.Server(
        upper, kit_http.decode_json(Echo), kit_http.encode_json, admission=limiter
    )
    kit_http.add_routes(app, {"POST /echo": server})
    return await kit_http.start_app(app, host="127.0.0.1", port=0, grace_period=1.0)


async def test_a_stalled_body_holds_a_slot_until_its_request_ends(
    session: aiohttp.ClientSession,
) -> None:
    limiter = ConcurrencyLimiter(1)
    running = await serve_http(limiter)
    try:
        port = running.addresses[0][1]
        _, stalled = await asyncio.open_connection("127.0.0.1", port)
        stalled.write(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{"  # and the other 99 bytes never come
        )
        await until(lambda: limiter.in_flight == 1)
        async with session.post(running.url / "echo", json={"s": "a"}) as resp:
            assert resp.status == 503
            assert resp.headers["Retry-After"] == "1"
            assert (await resp.json())["error"]["code"] == "UNAVAILABLE"
        stalled.close()  # the request ends (its body never arrives): the slot comes back
        await until(lambda: limiter.in_flight == 0)
        async with session.post(running.url / "echo", json={"s": "a"}) as resp:
            assert (resp.status, await resp.json()) == (200, {"s": "A"})
        assert limiter.in_flight == 0
    finally:
        await running.stop()


async def test_queueing_is_bounded_by_max_wait_and_by_the_deadline(
    session: aiohttp.ClientSession,
) -> None:
    limiter = ConcurrencyLimiter(1, max_waiting=10, max_wait=0.1)
    running = await serve_http(limiter)
    try:
        await limiter.acquire(Context())  # the only slot, held by someone else
        async with session.post(running.url / "echo", json={"s": "a"}) as resp:
            assert resp.status == 503  # waited 0.1 s, then shed
            assert "no concurrency slot within 0.1 s" in (await resp.json())["error"]["message"]
        headers = {**JSON, "X-Timeout-Ms": "30"}
        body = json.dumps({"s": "a"})
        async with session.post(running.url / "echo", data=body, headers=headers) as resp:
            assert resp.status == 504  # its own deadline came first
        limiter.release()
        async with session.post(running.url / "echo", json={"s": "a"}) as resp:
            assert resp.status == 200
        assert (limiter.in_flight, limiter.waiting) == (0, 0)
    finally:
        await running.stop()


async def test_an_overloaded_loop_sheds_new_requests_at_once(
    session: aiohttp.ClientSession,
) -> None:
    lag = LoopLag(max_lag=0.05, window=1)
    limiter = ConcurrencyLimiter(100, lag=lag)
    running = await serve_http(limiter)
    try:
        lag.record(0.5)  # as the probe would after a slow loop iteration
        async with session.post(running.url / "echo", json={"s": "a"}) as resp:
            assert resp.status == 503
            assert resp.headers["Retry-After"] == "1"
            assert "overloaded" in (await resp.json())["error"]["message"]
        lag.record(0.0)
        async with session.post(running.url / "echo", json={"s": "a"}) as resp:
            assert resp.status == 200
        assert limiter.shed == 1
    finally:
        await running.stop()


async def test_grpc_calls_hold_a_slot_and_the_excess_is_unavailable_with_retry_after() -> None:
    limiter = ConcurrencyLimiter(1)
    entered, leave = asyncio.Event(), asyncio.Event()

    async def slow(ctx: Context, s: str) -> str:
        entered.set()
        await leave.wait()
        return s

    async with serving(echo_server(slow, admission=limiter)) as running:
        client = echo_client(running.channel)
        first = asyncio.create_task(client(Context().with_timeout(5), "a"))
        async with asyncio.timeout(5):
            await entered.wait()
        with pytest.raises(Unavailable) as refused:
            await client(Context().with_timeout(5), "b")
        assert refused.value.headers is not None
        assert refused.value.headers.get("retry-after") == "1"
        leave.set()
        assert await first == "a"
        assert await client(Context().with_timeout(5), "c") == "c"
    assert limiter.in_flight == 0


async def test_a_grpc_call_cancelled_by_its_client_gives_its_slot_back() -> None:
    limiter = ConcurrencyLimiter(1)
    entered = asyncio.Event()

    async def hang(ctx: Context, s: str) -> str:
        entered.set()
        await asyncio.sleep(30)
        return s

    async with serving(echo_server(hang, admission=limiter)) as running:
        call = running.channel.unary_unary(
            "/test.v1.Echo/Call",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        pending = call(b"\n\x01a", timeout=10)
        async with asyncio.timeout(5):
            await entered.wait()
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        await until(lambda: limiter.in_flight == 0)  # the slot is back


async def test_the_loop_lag_is_charged_to_the_callers_deadline(
    session: aiohttp.ClientSession,
) -> None:
    """Under load a request waits about the loop's lag before its handler runs: that wait counts
    against its X-Timeout-Ms, so one whose budget it used up is 504 without running."""
    ran: list[str] = []

    async def record(ctx: Context, request: Echo) -> Echo:
        ran.append(request.s)
        return request

    lag = LoopLag(max_lag=1.0, window=1)  # lagging, but not enough to shed
    app = web.Application()
    server = kit_http.Server(
        record,
        kit_http.decode_json(Echo),
        kit_http.encode_json,
        admission=ConcurrencyLimiter(10, lag=lag),
    )
    kit_http.add_routes(app, {"POST /echo": server})
    running = await kit_http.start_app(app, host="127.0.0.1", port=0, grace_period=1.0)
    try:
        lag.record(0.3)
        for budget_ms, s in ((100, "late"), (2000, "in time")):
            headers = {**JSON, "X-Timeout-Ms": str(budget_ms)}
            body = json.dumps({"s": s})
            async with session.post(running.url / "echo", data=body, headers=headers) as resp:
                assert resp.status == (504 if s == "late" else 200)
    finally:
        await running.stop()
    assert ran == ["in time"]  # the late one never reached the endpoint
