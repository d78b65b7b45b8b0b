"""The client stack under test, a kitpy proxy in front of it, and a bounded load driver.

Per request the proxy (a kitpy HTTP :class:`~kitpy.transport.http.Server`, so the
caller's ``X-Timeout-Ms`` becomes the Context deadline) calls::

    lb_retry(P2C(Endpointer(instancer, factory)), budget=RetryBudget(...))
        -> per instance: circuit_breaker -> timeout(attempt) -> kitpy HTTP Client

:func:`drive` sends a fixed number of requests at a fixed concurrency and
records each one's :class:`Outcome`; nothing in it can wait longer than the
request deadline plus a safety margin.  The proxy records, for every request,
how far past its Context deadline it answered (:attr:`ProxyStack.overruns`):
measured where the deadline lives, so a busy shared machine delaying the
driver's own sockets does not count against the stack.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from kitpy import Context, Endpoint, chain
from kitpy.circuitbreaker import CircuitBreaker, ConsecutiveFailures, circuit_breaker
from kitpy.errors import Code, http_status
from kitpy.resilience import RetryBudget, timeout
from kitpy.sd import P2C, Closer, Endpointer, Factory, Instance, Instancer, lb_retry
from kitpy.transport.http import (
    TIMEOUT_HEADER,
    Client,
    RunningApp,
    Server,
    add_routes,
    decode_json,
    decode_json_response,
    encode_json,
    encode_json_request,
    start_app,
)

__all__ = [
    "Outcome",
    "ProxyStack",
    "StackConfig",
    "Upper",
    "Uppered",
    "check_failures_are_coded",
    "check_deadlines",
    "drive",
    "proxy_stack",
    "success_rate",
]


@dataclass(frozen=True, slots=True)
class Upper:
    s: str


@dataclass(frozen=True, slots=True)
class Uppered:
    v: str
    by: str


@dataclass(frozen=True, slots=True)
class StackConfig:
    """The client stack's knobs, as the fault tests use them."""

    max_attempts: int = 3
    attempt_timeout: float = 0.5
    budget_ratio: float = 0.2
    budget_floor: float = 10.0  # retries always allowed over the whole test
    breaker_failures: int = 3
    breaker_reset: float = 0.5
    failure_penalty: float = 0.5

    @property
    def budget_window(self) -> float:
        """Longer than any test, so the budget's bound holds for the whole run."""
        return 300.0

    def budget(self) -> RetryBudget:
        return RetryBudget(
            ratio=self.budget_ratio,
            min_per_second=self.budget_floor / self.budget_window,
            window=self.budget_window,
        )


@dataclass
class ProxyStack:
    """A running proxy: its URL, the discovery state, the per-instance breakers, and
    per request how many seconds past its deadline the proxy answered (<= 0: in time)."""

    url: str
    endpointer: Endpointer[Upper, Uppered]
    budget: RetryBudget
    breakers: dict[str, CircuitBreaker] = field(default_factory=dict)
    overruns: list[float] = field(default_factory=list)


def client_factory(
    session: aiohttp.ClientSession, config: StackConfig, breakers: dict[str, CircuitBreaker]
) -> Factory[Upper, Uppered]:
    """Per instance: breaker -> per-attempt timeout -> kitpy HTTP client."""
    decode = decode_json_response(Uppered)

    def factory(instance: Instance) -> tuple[Endpoint[Upper, Uppered], Closer | None]:
        breaker = CircuitBreaker(
            policy=ConsecutiveFailures(config.breaker_failures),
            reset_timeout=config.breaker_reset,
            name=instance.address,
        )
        breakers[instance.address] = breaker
        url = f"http://{instance.address}/upper"
        client = Client(session, "POST", url, encode_json_request, decode)
        stack = chain(circuit_breaker(breaker), timeout(config.attempt_timeout))
        return stack(client), None

    return factory


@asynccontextmanager
async def proxy_stack(
    instancer: Instancer, config: StackConfig = StackConfig()
) -> AsyncIterator[ProxyStack]:
    """Start the proxy on 127.0.0.1 (port 0) over ``instancer``; stop it on exit."""
    async with aiohttp.ClientSession() as session:
        breakers: dict[str, CircuitBreaker] = {}
        endpointer = Endpointer(
            instancer, client_factory(session, config, breakers), on_error=lambda i, e: None
        )
        budget = config.budget()
        endpoint = lb_retry(
            P2C(endpointer, failure_penalty=config.failure_penalty, rng=random.Random(1)),
            max_attempts=config.max_attempts,
            budget=budget,
            base_delay=0.01,
            max_delay=0.05,
            rng=random.Random(2),
        )
        overruns: list[float] = []

        def record_overrun(ctx: Context, status: int, size: int) -> None:
            if ctx.deadline is not None:
                overruns.append(ctx.clock() - ctx.deadline)

        server = Server(endpoint, decode_json(Upper), encode_json, finalizer=[record_overrun])
        app = web.Application()
        add_routes(app, {"POST /upper": server})
        running: RunningApp = await start_app(
            app, host="127.0.0.1", port=0, grace_period=1.0, access_log=None
        )
        try:
            async with endpointer:
                yield ProxyStack(str(running.url / "upper"), endpointer, budget, breakers, overruns)
        finally:
            await running.stop()


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request through the proxy: HTTP status (0: no answer in time), error code, timing."""

    status: int
    code: str | None
    elapsed: float
    by: str | None


HANG_MARGIN = 3.0
"""How long past its deadline the driver waits for an answer before calling it a hang."""


async def _one(session: aiohttp.ClientSession, url: str, i: int, deadline: float) -> Outcome:
    start = time.monotonic()
    headers = {TIMEOUT_HEADER: str(round(deadline * 1000))}
    try:
        async with session.post(
            url,
            json={"s": f"r{i}"},
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=deadline + HANG_MARGIN),
        ) as response:
            body = await response.json(content_type=None)
            elapsed = time.monotonic() - start
            if response.status == 200:
                assert body["v"] == f"R{i}", body
                return Outcome(200, None, elapsed, body["by"])
            return Outcome(response.status, body["error"]["code"], elapsed, None)
    except TimeoutError:
        return Outcome(0, "HANG", time.monotonic() - start, None)


async def drive(
    url: str, requests: int, *, concurrency: int = 8, deadline: float = 0.8, start: int = 0
) -> list[Outcome]:
    """Send ``requests`` requests with ``deadline`` seconds each, ``concurrency`` at a time."""
    outcomes: list[Outcome] = []
    numbers = iter(range(start, start + requests))
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            for i in numbers:
                outcomes.append(await _one(session, url, i, deadline))

        async with asyncio.timeout(requests * (deadline + HANG_MARGIN)):
            await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcomes


def success_rate(outcomes: Sequence[Outcome]) -> float:
    """The fraction of outcomes that were a 200."""
    return sum(o.status == 200 for o in outcomes) / len(outcomes)


FAILURE_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})
"""The only codes a failed request may carry: the upstream is down or the time ran out."""


def check_failures_are_coded(outcomes: Sequence[Outcome]) -> None:
    """Every failure is UNAVAILABLE (503) or DEADLINE_EXCEEDED (504); never a 500 or a hang."""
    for o in outcomes:
        if o.status == 200:
            continue
        assert o.code in FAILURE_CODES, o
        assert o.status == http_status(Code[o.code]), o


def check_deadlines(stack: ProxyStack, outcomes: Sequence[Outcome], margin: float) -> None:
    """The proxy answered every request, none more than ``margin`` seconds past its deadline."""
    assert len(stack.overruns) == len(outcomes)
    worst = max(stack.overruns)
    assert worst <= margin, f"a request was answered {worst:.3f}s past its deadline"
