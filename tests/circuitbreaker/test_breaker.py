"""The native CircuitBreaker: failure-rate policy, lazy half-open, manual control, validation."""

from __future__ import annotations

import contextlib

import pytest

from kitpy import Context, Endpoint
from kitpy.circuitbreaker import (
    CircuitBreaker,
    ConsecutiveFailures,
    FailureRate,
    State,
    circuit_breaker,
)
from kitpy.errors import CircuitOpen, Internal, NotFound, Unavailable
from kitpy.testing import FakeClock

from .harness import Scripted, state_of


async def call(ep: Endpoint[str, str], fail: BaseException | None, upstream: Scripted) -> None:
    upstream.fail_with = fail
    with contextlib.suppress(Unavailable, Internal, NotFound):
        await ep(Context(), "x")


async def test_failure_rate_needs_min_calls_then_trips_at_threshold() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(
        policy=FailureRate(threshold=0.5, window=10.0, min_calls=10), clock=clock
    )
    upstream = Scripted()
    ep = circuit_breaker(breaker)(upstream)
    for _ in range(5):  # 5 of 5 failed, but fewer than min_calls
        await call(ep, Unavailable(), upstream)
    assert state_of(breaker) is State.CLOSED
    for _ in range(4):
        await call(ep, None, upstream)
    assert state_of(breaker) is State.CLOSED  # 5 failures / 9 calls, still < min_calls
    await call(ep, Internal(), upstream)  # 6 / 10 >= 0.5
    assert state_of(breaker) is State.OPEN


async def test_failure_rate_forgets_old_failures() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(
        policy=FailureRate(threshold=0.5, window=10.0, min_calls=4), clock=clock
    )
    upstream = Scripted()
    ep = circuit_breaker(breaker)(upstream)
    for _ in range(3):
        await call(ep, Unavailable(), upstream)
    clock.advance(20.0)
    await call(ep, Unavailable(), upstream)
    assert state_of(breaker) is State.CLOSED  # only 1 call in the window now
    for _ in range(3):
        await call(ep, None, upstream)
    assert state_of(breaker) is State.CLOSED  # 1 / 4 < 0.5


async def test_failure_rate_ignores_client_faults_as_failures() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(policy=FailureRate(threshold=0.5, min_calls=2), clock=clock)
    upstream = Scripted()
    ep = circuit_breaker(breaker)(upstream)
    for _ in range(10):
        await call(ep, NotFound(), upstream)
    assert state_of(breaker) is State.CLOSED


def test_state_reads_half_open_after_the_timeout_and_manual_control() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(reset_timeout=5.0, clock=clock)
    breaker.trip()
    assert state_of(breaker) is State.OPEN
    with pytest.raises(CircuitOpen) as info:
        breaker.before()
    assert info.value.headers == {"Retry-After": "5"}
    clock.advance(5.0)
    assert state_of(breaker) is State.HALF_OPEN
    breaker.reset()
    assert state_of(breaker) is State.CLOSED
    assert repr(breaker) == "CircuitBreaker(CLOSED)"
    assert repr(CircuitBreaker(name="users")) == "CircuitBreaker('users', CLOSED)"


def test_custom_classifier() -> None:
    breaker = CircuitBreaker(
        policy=ConsecutiveFailures(1), classifier=lambda e: isinstance(e, NotFound)
    )
    token = breaker.before()
    breaker.on_error(token, Unavailable())
    assert state_of(breaker) is State.CLOSED
    token = breaker.before()
    breaker.on_error(token, NotFound())
    assert state_of(breaker) is State.OPEN


def test_validation() -> None:
    with pytest.raises(ValueError, match="reset_timeout"):
        CircuitBreaker(reset_timeout=-1)
    with pytest.raises(ValueError, match="half_open_max_calls"):
        CircuitBreaker(half_open_max_calls=0)
    with pytest.raises(ValueError, match="n must"):
        ConsecutiveFailures(0)
    with pytest.raises(ValueError, match="threshold"):
        FailureRate(threshold=0)
    with pytest.raises(ValueError, match="min_calls"):
        FailureRate(min_calls=0)


def test_one_policy_serves_many_breakers() -> None:
    policy = ConsecutiveFailures(2)
    a = CircuitBreaker(policy=policy)
    b = CircuitBreaker(policy=policy)
    for _ in range(2):
        a.on_error(a.before(), Unavailable())
    assert a.state is State.OPEN
    assert b.state is State.CLOSED
