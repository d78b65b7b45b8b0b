"""kitpy.errors' one failure policy, as the resilience layers apply it.

A breaker counts server faults, connection errors and unexpected exceptions,
but not client faults or cancellation; retry retries UNAVAILABLE,
DEADLINE_EXCEEDED and connection errors (``OSError``, ``TimeoutError``) but
never a client fault; every layer takes another test as ``classifier=``.
"""

from __future__ import annotations

import asyncio

import pytest

from kitpy import Context, Endpoint
from kitpy.circuitbreaker import CircuitBreaker, ConsecutiveFailures, State, circuit_breaker
from kitpy.errors import (
    Cancelled,
    Classifier,
    Code,
    DataLoss,
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
    Unavailable,
    Unknown,
    is_retryable,
    is_server_fault,
)
from kitpy.resilience import RetryError, fallback, retry

SERVER_FAULTS = [
    Unavailable(),
    DeadlineExceeded(),
    Internal(),
    Unknown(),
    DataLoss(),
    ConnectionRefusedError(),
    OSError("no route to host"),
    TimeoutError(),
    RuntimeError("a bug"),
]
CLIENT_FAULTS = [
    InvalidArgument(),
    NotFound(),
    Unauthenticated(),
    PermissionDenied(),
    RateLimited(),
]
RETRYABLE = [
    Unavailable(),
    DeadlineExceeded(),
    ConnectionResetError(),
    OSError("no route to host"),
    TimeoutError(),
]
NOT_RETRYABLE = [*CLIENT_FAULTS, Internal(), Unknown(), DataLoss(), RuntimeError("a bug")]


class Raising:
    """An endpoint that raises ``exc`` on every call and counts the calls."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.calls = 0

    async def __call__(self, ctx: Context, request: str) -> str:
        self.calls += 1
        raise self.exc


def one_strike(*, classifier: Classifier = is_server_fault) -> CircuitBreaker:
    return CircuitBreaker(policy=ConsecutiveFailures(1), classifier=classifier)


def state_of(breaker: CircuitBreaker) -> State:
    """Read the state through a call, so mypy does not narrow it between reads."""
    return breaker.state


async def call(ep: Endpoint[str, str]) -> None:
    with pytest.raises(BaseException):  # noqa: B017, PT011 - whatever the endpoint raised
        await ep(Context(), "x")


@pytest.mark.parametrize("exc", SERVER_FAULTS, ids=repr)
async def test_a_breaker_counts_server_faults_and_unexpected_exceptions(exc: Exception) -> None:
    breaker = one_strike()
    await call(circuit_breaker(breaker)(Raising(exc)))
    assert state_of(breaker) is State.OPEN


@pytest.mark.parametrize("exc", [*CLIENT_FAULTS, Cancelled(), asyncio.CancelledError()], ids=repr)
async def test_a_breaker_ignores_client_faults_and_cancellation(exc: BaseException) -> None:
    breaker = one_strike()
    upstream = Raising(exc)
    ep = circuit_breaker(breaker)(upstream)
    for _ in range(3):
        await call(ep)
    assert state_of(breaker) is State.CLOSED
    assert upstream.calls == 3


@pytest.mark.parametrize("exc", RETRYABLE, ids=repr)
async def test_retry_retries_unavailable_deadline_and_connection_errors(exc: Exception) -> None:
    upstream = Raising(exc)
    with pytest.raises(RetryError) as info:
        await retry(max_attempts=3, base_delay=0.0)(upstream)(Context(), "x")
    assert upstream.calls == 3
    assert info.value.code in (Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED)


@pytest.mark.parametrize("exc", NOT_RETRYABLE, ids=repr)
async def test_retry_never_retries_client_faults_or_bugs(exc: Exception) -> None:
    upstream = Raising(exc)
    with pytest.raises(RetryError):
        await retry(max_attempts=3, base_delay=0.0)(upstream)(Context(), "x")
    assert upstream.calls == 1


async def test_a_connection_error_reaches_the_caller_as_unavailable() -> None:
    with pytest.raises(RetryError) as info:
        await retry(max_attempts=2, base_delay=0.0)(Raising(ConnectionRefusedError()))(
            Context(), "x"
        )
    assert info.value.code is Code.UNAVAILABLE


async def test_cancellation_is_never_retried() -> None:
    upstream = Raising(asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await retry(max_attempts=3, base_delay=0.0)(upstream)(Context(), "x")
    assert upstream.calls == 1


class DriverDisconnected(Exception):
    """A library's connection error that is not an OSError."""


async def test_custom_classifiers() -> None:
    def failed(exc: BaseException) -> bool:
        return is_retryable(exc) or isinstance(exc, DriverDisconnected)

    upstream = Raising(DriverDisconnected())
    with pytest.raises(RetryError):
        await retry(max_attempts=3, base_delay=0.0, classifier=failed)(upstream)(Context(), "x")
    assert upstream.calls == 3

    # A breaker that counts only NOT_FOUND: UNAVAILABLE no longer trips it.
    breaker = one_strike(classifier=lambda exc: isinstance(exc, NotFound))
    await call(circuit_breaker(breaker)(Raising(Unavailable())))
    assert state_of(breaker) is State.CLOSED
    await call(circuit_breaker(breaker)(Raising(NotFound())))
    assert state_of(breaker) is State.OPEN

    async def degraded(ctx: Context, request: str, error: BaseException) -> str:
        return "degraded"

    def not_found_too(exc: BaseException) -> bool:
        return is_server_fault(exc) or isinstance(exc, NotFound)

    ep = fallback(degraded, classifier=not_found_too)(Raising(NotFound()))
    assert await ep(Context(), "x") == "degraded"
    with pytest.raises(NotFound):
        await fallback(degraded)(Raising(NotFound()))(Context(), "x")
