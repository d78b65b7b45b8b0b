"""Fuzz the ``X-Timeout-Ms`` parser and formatter directly, and the deadline end to end.

``parse_timeout`` takes any text and either returns a budget the header format
allows or raises ``InvalidArgument``; ``format_timeout`` turns any budget a
Context can hold (zero to infinity) into a header ``parse_timeout`` accepts,
never shrinking it by more than the rounding; and a kitpy Client with any
deadline reaches a kitpy Server with a deadline no later than its own.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from kitpy import Context
from kitpy.errors import DeadlineExceeded, InvalidArgument
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

from .harness import fuzz_settings

MAX_BUDGET = 9_999_999.999  # ten digits of milliseconds


@fuzz_settings(200)
@given(text=st.text(max_size=16) | st.integers(-(10**12), 10**12).map(str))
def test_parse_returns_a_valid_budget_or_raises_invalid_argument(text: str) -> None:
    try:
        seconds = parse_timeout(text)
    except InvalidArgument as exc:
        message = exc.message
    else:
        message = ""
    if message:
        assert "X-Timeout-Ms" in message
        return
    assert text.isascii()
    assert text.isdigit()
    assert len(text) <= 10
    assert seconds == int(text) / 1000
    assert 0 <= seconds <= MAX_BUDGET


@fuzz_settings(200)
@given(
    seconds=st.floats(min_value=0, allow_infinity=True, allow_nan=False)
    | st.floats(min_value=0, max_value=10)
)
def test_any_budget_formats_to_a_header_the_parser_accepts(seconds: float) -> None:
    header = format_timeout(seconds)
    back = parse_timeout(header)
    if seconds <= MAX_BUDGET:
        assert seconds <= back  # rounded up to a whole millisecond, never down
        assert back - seconds <= 0.001 + 1e-9 * max(1.0, seconds)
    else:
        assert back == MAX_BUDGET


@dataclass(frozen=True, slots=True)
class Ping:
    n: int


@pytest.fixture
async def ping_url() -> AsyncIterator[str]:
    async def ping(ctx: Context, request: Ping) -> dict[str, float | None]:
        return {"remaining": ctx.time_remaining()}

    app = web.Application()
    add_routes(app, {"POST /ping": Server(ping, decode_json(Ping), encode_json)})
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/ping"
    finally:
        await runner.cleanup()


@dataclass(frozen=True, slots=True)
class Remaining:
    remaining: float | None


async def test_any_client_deadline_reaches_the_server(ping_url: str) -> None:
    """Runs the examples inside one event loop; hypothesis drives a plain function."""
    seen: list[float] = []
    async with aiohttp.ClientSession() as session:
        client = Client(
            session, "POST", ping_url, encode_json_request, decode_json_response(Remaining)
        )
        loop = asyncio.get_running_loop()
        examples: list[float] = []

        @fuzz_settings(100)
        @given(seconds=st.floats(min_value=0, allow_infinity=True, allow_nan=False))
        def collect(seconds: float) -> None:
            examples.append(seconds)

        collect()
        for seconds in [*examples, math.inf, 1e300, 2e7, 0.0, 1e-9]:
            ctx = Context().with_timeout(seconds)
            try:
                async with asyncio.timeout(10):
                    reply = await client(ctx, Ping(1))
            except DeadlineExceeded:
                assert seconds < 1.0  # a tiny budget may be spent on the way
                continue
            assert reply.remaining is not None
            assert reply.remaining <= min(seconds, MAX_BUDGET) + 0.001
            seen.append(seconds)
        assert loop.is_running()
    assert any(s > MAX_BUDGET for s in seen)  # the huge and infinite budgets went through
