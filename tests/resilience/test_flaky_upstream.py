"""A real flaky upstream on a socket: breaker trips, sheds, recovers; exact upstream call counts.

The upstream is a raw aiohttp app on 127.0.0.1 (port 0) that answers 503 to its
first ``fail_first`` requests and then recovers.  The client is
``kitpy.transport.http.Client``; the breaker, retry and limiter run on virtual
time so the test decides when the reset timeout has passed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from kitpy import Context, Endpoint, chain
from kitpy.circuitbreaker import CircuitBreaker, ConsecutiveFailures, State, circuit_breaker
from kitpy.errors import CircuitOpen, RateLimited, Unavailable
from kitpy.ratelimit import TokenBucket, rate_limit
from kitpy.resilience import RetryBudget, RetryError, retry
from kitpy.testing import FakeClock
from kitpy.transport.http import Client, decode_json_response, encode_json_request


@dataclass
class Echo:
    s: str


@dataclass
class Upstream:
    url: str
    fail_first: int = 0
    hits: int = 0
    hold: asyncio.Event | None = None
    second_hit: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    state = Upstream(url="")

    async def echo(request: web.Request) -> web.Response:
        state.hits += 1
        if state.hits == 2:
            state.second_hit.set()
        if state.hold is not None:
            await state.hold.wait()
        if state.hits <= state.fail_first:
            return web.json_response({"error": "overloaded"}, status=503)
        body = await request.json()
        return web.json_response({"s": body["s"]})

    app = web.Application()
    app.router.add_post("/echo", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.url = f"http://127.0.0.1:{port}/echo"
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def client(session: aiohttp.ClientSession, url: str) -> Endpoint[Echo, Echo]:
    return Client(session, "POST", url, encode_json_request, decode_json_response(Echo))


def state_of(breaker: CircuitBreaker) -> State:
    return breaker.state


async def test_breaker_trips_sheds_and_recovers(
    upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    upstream.fail_first = 5
    clock = FakeClock()
    breaker = CircuitBreaker(policy=ConsecutiveFailures(3), reset_timeout=10.0, clock=clock)
    ep = circuit_breaker(breaker)(client(session, upstream.url))
    ctx = Context().with_timeout(5.0)

    for _ in range(3):
        with pytest.raises(Unavailable):
            await ep(ctx, Echo("a"))
    assert upstream.hits == 3
    assert state_of(breaker) is State.OPEN

    for _ in range(10):  # shed: nothing reaches the upstream
        with pytest.raises(CircuitOpen):
            await ep(ctx, Echo("a"))
    assert upstream.hits == 3

    clock.advance(10.0)  # half-open: one trial, which fails (hit 4) -> open again
    with pytest.raises(Unavailable):
        await ep(ctx, Echo("a"))
    assert upstream.hits == 4
    with pytest.raises(CircuitOpen):
        await ep(ctx, Echo("a"))
    assert upstream.hits == 4

    clock.advance(10.0)  # trial fails again (hit 5)
    with pytest.raises(Unavailable):
        await ep(ctx, Echo("a"))
    clock.advance(10.0)  # the upstream has recovered: the trial (hit 6) closes the breaker
    assert await ep(ctx, Echo("hi")) == Echo("hi")
    assert state_of(breaker) is State.CLOSED
    for i in range(6):
        assert await ep(ctx, Echo(str(i))) == Echo(str(i))
    assert upstream.hits == 12


async def test_half_open_lets_exactly_one_concurrent_trial_reach_the_upstream(
    upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    upstream.fail_first = 1
    clock = FakeClock()
    breaker = CircuitBreaker(policy=ConsecutiveFailures(1), reset_timeout=10.0, clock=clock)
    ep = circuit_breaker(breaker)(client(session, upstream.url))
    ctx = Context().with_timeout(5.0)
    with pytest.raises(Unavailable):
        await ep(ctx, Echo("a"))
    clock.advance(10.0)
    upstream.hold = asyncio.Event()
    calls = [asyncio.ensure_future(ep(ctx, Echo(str(i)))) for i in range(8)]
    async with asyncio.timeout(5):
        await upstream.second_hit.wait()
    await asyncio.sleep(0.05)  # give any wrongly admitted call time to reach the upstream
    upstream.hold.set()
    async with asyncio.timeout(5):
        results = await asyncio.gather(*calls, return_exceptions=True)
    assert results[0] == Echo("0")
    assert sum(isinstance(r, CircuitOpen) for r in results) == 7
    assert upstream.hits == 2
    assert state_of(breaker) is State.CLOSED


async def test_rate_limit_breaker_retry_stack_counts(
    upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    """rate limit -> circuit breaker -> retry -> HTTP client, as stringsvc wires it."""
    upstream.fail_first = 4
    breaker_clock = FakeClock()
    limiter_clock = FakeClock()
    breaker = CircuitBreaker(policy=ConsecutiveFailures(2), reset_timeout=10.0, clock=breaker_clock)
    stack = chain(
        rate_limit(TokenBucket(rate=1.0, burst=5, clock=limiter_clock)),
        circuit_breaker(breaker),
        retry(
            max_attempts=2,
            base_delay=0.0,
            budget=RetryBudget(ratio=1.0, min_per_second=10.0, clock=breaker_clock),
            clock=breaker_clock,
            sleep=breaker_clock.sleep,
        ),
    )
    ep = stack(client(session, upstream.url))
    ctx = Context().with_timeout(5.0)

    for expected_hits in (2, 4):  # each call: 2 attempts, both 503
        with pytest.raises(RetryError) as info:
            await ep(ctx, Echo("a"))
        assert len(info.value.errors) == 2
        assert upstream.hits == expected_hits
    assert state_of(breaker) is State.OPEN  # two failed calls, not four attempts

    with pytest.raises(CircuitOpen):  # token 3
        await ep(ctx, Echo("a"))
    assert upstream.hits == 4

    breaker_clock.advance(10.0)
    assert await ep(ctx, Echo("ok")) == Echo("ok")  # token 4, hit 5, closes
    assert await ep(ctx, Echo("ok")) == Echo("ok")  # token 5, hit 6
    with pytest.raises(RateLimited):  # no token left: rejected before the breaker
        await ep(ctx, Echo("a"))
    assert upstream.hits == 6
    assert state_of(breaker) is State.CLOSED


async def test_refused_connection_is_a_retryable_failure(session: aiohttp.ClientSession) -> None:
    from tests.servers import free_port

    clock = FakeClock()
    breaker = CircuitBreaker(policy=ConsecutiveFailures(1), clock=clock)
    ep = chain(
        circuit_breaker(breaker),
        retry(max_attempts=3, base_delay=0.0, clock=clock, sleep=clock.sleep),
    )(client(session, f"http://127.0.0.1:{free_port()}/echo"))
    with pytest.raises(RetryError) as info:
        await ep(Context().with_timeout(5.0), Echo("a"))
    assert len(info.value.errors) == 3
    assert all(isinstance(e, Unavailable) for e in info.value.errors)
    assert state_of(breaker) is State.OPEN
