"""What the pybreaker adapter keeps from the user's breaker: settings, exclude list, listeners."""

from __future__ import annotations

import pybreaker
import pytest

from kitpy import Context
from kitpy.circuitbreaker import State, circuit_breaker
from kitpy.circuitbreaker.pybreaker_adapter import PyBreakerAdapter
from kitpy.errors import CircuitOpen, Unavailable
from kitpy.testing import FakeClock

from .harness import Scripted, fake_wall_clock, state_of


class Recorder(pybreaker.CircuitBreakerListener):
    def __init__(self) -> None:
        self.changes: list[tuple[str | None, str]] = []
        self.failures = 0
        self.successes = 0

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        self.changes.append((old_state.name if old_state else None, new_state.name))

    def failure(self, cb: pybreaker.CircuitBreaker, exc: BaseException) -> None:
        self.failures += 1

    def success(self, cb: pybreaker.CircuitBreaker) -> None:
        self.successes += 1


async def test_awaits_the_coroutine_and_records_real_outcomes() -> None:
    recorder = Recorder()
    cb = pybreaker.CircuitBreaker(fail_max=2, reset_timeout=30, listeners=[recorder])
    upstream = Scripted()
    ep = circuit_breaker(PyBreakerAdapter(cb))(upstream)
    assert await ep(Context(), "ok") == "ok"  # a real value, not a coroutine
    upstream.fail_with = Unavailable()
    for _ in range(2):
        with pytest.raises(Unavailable):
            await ep(Context(), "x")
    assert cb.current_state == pybreaker.STATE_OPEN
    assert recorder.successes == 1
    assert recorder.failures == 2
    assert recorder.changes == [("closed", "open")]  # the user's listener still hears it
    with pytest.raises(CircuitOpen):
        await ep(Context(), "x")
    assert upstream.calls == 3


async def test_pybreaker_exclude_list_still_applies() -> None:
    class Business(Exception):
        pass

    cb = pybreaker.CircuitBreaker(fail_max=1, exclude=[Business])
    upstream = Scripted()
    upstream.fail_with = Business()
    ep = circuit_breaker(PyBreakerAdapter(cb))(upstream)
    for _ in range(3):
        with pytest.raises(Business):
            await ep(Context(), "x")
    assert cb.current_state == pybreaker.STATE_CLOSED


async def test_breaker_opened_before_adapter_uses_pybreakers_timestamp() -> None:
    cb = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=30)
    cb.open()
    clock = FakeClock()
    adapter = PyBreakerAdapter(cb, now=fake_wall_clock(clock))
    ep = circuit_breaker(adapter)(Scripted())
    with pytest.raises(CircuitOpen):
        await ep(Context(), "x")
    clock.advance(40)
    assert await ep(Context(), "y") == "y"
    assert state_of(adapter) is State.CLOSED
    assert repr(adapter) == "PyBreakerAdapter(closed)"


async def test_no_new_error_on_trip_still_raises_the_original() -> None:
    cb = pybreaker.CircuitBreaker(fail_max=1, throw_new_error_on_trip=False)
    upstream = Scripted()
    upstream.fail_with = Unavailable("down")
    ep = circuit_breaker(PyBreakerAdapter(cb))(upstream)
    with pytest.raises(Unavailable, match="down") as info:
        await ep(Context(), "x")
    assert info.value.__traceback__ is not None
    assert cb.current_state == pybreaker.STATE_OPEN


def test_validation() -> None:
    with pytest.raises(ValueError, match="half_open_max_calls"):
        PyBreakerAdapter(pybreaker.CircuitBreaker(), half_open_max_calls=0)
