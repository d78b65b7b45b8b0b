"""Deadlines travel: client budget -> X-Timeout-Ms -> server Context; expiry -> 504."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web

from kitpy import Context, DeadlineExceeded
from kitpy.transport.http import (
    Client,
    Server,
    add_routes,
    decode_json,
    decode_json_response,
    encode_json,
    encode_json_request,
    format_timeout,
    parse_timeout,
)

from .conftest import ServeApp


@dataclass(frozen=True, slots=True)
class Nap:
    seconds: float


@dataclass
class Seen:
    remaining: list[float | None]
    statuses: list[int]
    finished: asyncio.Event


@pytest.fixture
async def slow_url(serve_app: ServeApp) -> tuple[str, Seen]:
    seen = Seen([], [], asyncio.Event())

    async def nap(ctx: Context, request: Nap) -> Nap:
        seen.remaining.append(ctx.time_remaining())
        await asyncio.sleep(request.seconds)
        return request

    def finalizer(ctx: Context, status: int, size: int) -> None:
        seen.statuses.append(status)
        seen.finished.set()

    app = web.Application()
    add_routes(
        app,
        {"POST /nap": Server(nap, decode_json(Nap), encode_json, finalizer=[finalizer])},
    )
    return str(await serve_app(app) / "nap"), seen


async def test_client_budget_reaches_the_server_and_bounds_both_sides(
    slow_url: tuple[str, Seen], session: aiohttp.ClientSession
) -> None:
    url, seen = slow_url
    client = Client(session, "POST", url, encode_json_request, decode_json_response(Nap))
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(DeadlineExceeded):
        # 200 ms rather than 50: on a loaded 2-core machine the request can take longer
        # than 50 ms just to be sent, and then the client (rightly) refuses to send it.
        await client(Context().with_timeout(0.2), Nap(seconds=5.0))
    assert loop.time() - started < 2.0  # the 5 s nap was not waited for
    # The server Context inherited the deadline, and the server gave up at it too.
    async with asyncio.timeout(5):
        await seen.finished.wait()
    (remaining,) = seen.remaining
    assert remaining is not None
    assert 0 < remaining <= 0.2
    assert seen.statuses == [504]


async def test_raw_client_gets_504_when_the_endpoint_overruns(
    slow_url: tuple[str, Seen], session: aiohttp.ClientSession
) -> None:
    url, seen = slow_url
    headers = {"Content-Type": "application/json", "X-Timeout-Ms": "50"}
    async with session.post(url, data=b'{"seconds": 5}', headers=headers) as resp:
        assert resp.status == 504
        assert await resp.json() == {
            "error": {"code": "DEADLINE_EXCEEDED", "message": "deadline exceeded"}
        }
    assert seen.statuses == [504]


async def test_expired_budget_is_504_before_the_endpoint(
    slow_url: tuple[str, Seen], session: aiohttp.ClientSession
) -> None:
    url, seen = slow_url
    headers = {"Content-Type": "application/json", "X-Timeout-Ms": "0"}
    async with session.post(url, data=b'{"seconds": 0}', headers=headers) as resp:
        assert resp.status == 504
        assert await resp.json() == {
            "error": {
                "code": "DEADLINE_EXCEEDED",
                "message": "deadline exceeded before the request was handled",
            }
        }
    assert seen.remaining == []


async def test_generous_budget_succeeds(
    slow_url: tuple[str, Seen], session: aiohttp.ClientSession
) -> None:
    url, seen = slow_url
    client = Client(session, "POST", url, encode_json_request, decode_json_response(Nap))
    assert await client(Context().with_timeout(5.0), Nap(seconds=0.0)) == Nap(seconds=0.0)
    (remaining,) = seen.remaining
    assert remaining is not None
    assert 4.0 < remaining <= 5.0
    assert seen.statuses == [200]


async def test_no_budget_means_no_header_and_no_deadline(
    slow_url: tuple[str, Seen], session: aiohttp.ClientSession
) -> None:
    url, seen = slow_url
    client = Client(session, "POST", url, encode_json_request, decode_json_response(Nap))
    await client(Context(), Nap(seconds=0.0))
    assert seen.remaining == [None]


async def test_server_can_leave_deadline_enforcement_to_the_endpoint(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    async def nap(ctx: Context, request: Nap) -> Nap:
        await asyncio.sleep(request.seconds)
        return request

    app = web.Application()
    add_routes(
        app,
        {"POST /nap": Server(nap, decode_json(Nap), encode_json, enforce_deadline=False)},
    )
    url = await serve_app(app)
    headers = {"Content-Type": "application/json", "X-Timeout-Ms": "20"}
    async with session.post(url / "nap", data=b'{"seconds": 0.1}', headers=headers) as resp:
        assert resp.status == 200


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.25, "250"), (0.0101, "11"), (0.0000001, "1"), (0.0, "0"), (3.0, "3000")],
)
def test_timeout_header_format_rounds_up(seconds: float, text: str) -> None:
    assert format_timeout(seconds) == text
    assert parse_timeout(text) >= seconds
