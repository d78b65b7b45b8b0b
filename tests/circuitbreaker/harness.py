"""Shared helpers: a scripted endpoint and a way to build each kind of breaker on virtual time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pybreaker

from kitpy import Context
from kitpy.circuitbreaker import Breaker, CircuitBreaker, ConsecutiveFailures, State
from kitpy.circuitbreaker.pybreaker_adapter import PyBreakerAdapter
from kitpy.testing import FakeClock

RESET_TIMEOUT = 30.0


class Scripted:
    """An endpoint that raises or returns per call; ``hold`` keeps calls in flight."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail_with: BaseException | None = None
        self.hold: asyncio.Event | None = None
        self.entered = 0

    async def __call__(self, ctx: Context, request: str) -> str:
        self.calls += 1
        self.entered += 1
        if self.hold is not None:
            await self.hold.wait()
        if self.fail_with is not None:
            raise self.fail_with
        return request


@dataclass
class Rig:
    breaker: Breaker
    clock: FakeClock
    kind: str

    def wait_out_reset(self) -> None:
        self.clock.advance(RESET_TIMEOUT + 5.0)


def state_of(breaker: Breaker) -> State:
    """Read the state through a call, so mypy does not narrow it between reads."""
    return breaker.state


def native(fail_max: int, clock: FakeClock, half_open_max_calls: int = 1) -> Rig:
    breaker = CircuitBreaker(
        policy=ConsecutiveFailures(fail_max),
        reset_timeout=RESET_TIMEOUT,
        clock=clock,
        name="native",
        half_open_max_calls=half_open_max_calls,
    )
    return Rig(breaker, clock, "native")


def fake_wall_clock(clock: FakeClock) -> Callable[[], datetime]:
    """pybreaker stamps ``opened_at`` with the real wall clock; follow it, plus virtual time."""
    start_wall = datetime.now(UTC)
    start = clock()
    return lambda: start_wall + timedelta(seconds=clock() - start)


def adapted(fail_max: int, clock: FakeClock, half_open_max_calls: int = 1) -> Rig:
    cb = pybreaker.CircuitBreaker(fail_max=fail_max, reset_timeout=RESET_TIMEOUT, name="py")
    adapter = PyBreakerAdapter(
        cb, now=fake_wall_clock(clock), half_open_max_calls=half_open_max_calls
    )
    return Rig(adapter, clock, "pybreaker")


BUILDERS = {"native": native, "pybreaker": adapted}


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)
