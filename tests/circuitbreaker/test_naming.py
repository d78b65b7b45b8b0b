"""Who a CircuitOpen names: the breaker, else the endpoint or operation refused, never 'circuit'."""

from __future__ import annotations

import asyncio

import pybreaker
import pytest

from kitpy import Context
from kitpy.circuitbreaker import (
    Breaker,
    CircuitBreaker,
    ConsecutiveFailures,
    State,
    circuit_breaker,
    circuit_open,
)
from kitpy.circuitbreaker.pybreaker_adapter import PyBreakerAdapter
from kitpy.context import OPERATION, OPERATION_SOURCE
from kitpy.endpoint import Endpoint, endpoint_name, named
from kitpy.errors import CircuitOpen, Unavailable

from .harness import Scripted


def unnamed(kind: str) -> Breaker:
    if kind == "native":
        return CircuitBreaker(policy=ConsecutiveFailures(1))
    return PyBreakerAdapter(pybreaker.CircuitBreaker(fail_max=1, reset_timeout=30))


def named_breaker(kind: str, name: str) -> Breaker:
    if kind == "native":
        return CircuitBreaker(policy=ConsecutiveFailures(1), name=name)
    return PyBreakerAdapter(pybreaker.CircuitBreaker(fail_max=1, reset_timeout=30, name=name))


@pytest.fixture(params=["native", "pybreaker"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def refusal(ep: Endpoint[str, str], ctx: Context | None = None) -> str:
    """Trip the breaker with one failure, then return the message of the refusal."""
    with pytest.raises(Unavailable):
        await ep(ctx or Context(), "x")
    with pytest.raises(CircuitOpen) as info:
        await ep(ctx or Context(), "x")
    return info.value.message


def failing() -> Scripted:
    upstream = Scripted()
    upstream.fail_with = Unavailable("down")
    return upstream


async def test_an_unnamed_breaker_names_the_endpoint_it_guards(kind: str) -> None:
    ep = circuit_breaker(unnamed(kind))(named("get_user")(failing()))
    assert endpoint_name(ep) == "get_user"
    assert await refusal(ep) == "circuit breaker for 'get_user' is open"


async def test_else_the_operation_the_transport_serves(kind: str) -> None:
    reads: list[Context] = []

    def operation_of(ctx: Context) -> str:
        reads.append(ctx)
        return "POST /uppercase"

    ctx = Context().with_value(OPERATION_SOURCE, operation_of)
    breaker = unnamed(kind)
    ok = circuit_breaker(breaker)(Scripted())
    assert await ok(ctx, "x") == "x"
    assert reads == []  # admitted calls never look the operation up
    ep = circuit_breaker(breaker)(failing())
    assert await refusal(ep, ctx) == "circuit breaker for 'POST /uppercase' is open"
    assert len(reads) == 1


async def test_else_a_neutral_phrase(kind: str) -> None:
    message = await refusal(circuit_breaker(unnamed(kind))(failing()))
    assert message == "circuit breaker is open"
    assert "'circuit'" not in message


async def test_a_named_breaker_names_itself(kind: str) -> None:
    ep = circuit_breaker(named_breaker(kind, "users"))(named("get_user")(failing()))
    ctx = Context().with_value(OPERATION, "POST /users")
    assert await refusal(ep, ctx) == "circuit 'users' is open"


async def test_busy_half_open_trials_name_the_operation_too() -> None:
    breaker = CircuitBreaker(policy=ConsecutiveFailures(1), reset_timeout=0.0)
    breaker.trip()
    upstream = Scripted()
    upstream.hold = asyncio.Event()
    ep = circuit_breaker(breaker)(named("get_user")(upstream))
    trial = asyncio.ensure_future(ep(Context(), "x"))
    await asyncio.sleep(0)
    with pytest.raises(CircuitOpen, match="for 'get_user' is half-open and its trial calls"):
        await ep(Context(), "y")
    upstream.hold.set()
    async with asyncio.timeout(5):
        assert await trial == "x"


async def test_listeners_hear_the_breakers_own_name_or_a_neutral_one(kind: str) -> None:
    heard: list[tuple[str, State, State]] = []
    for breaker in (unnamed(kind), named_breaker(kind, "users")):
        breaker.add_listener(lambda name, old, new: heard.append((name, old, new)))
        await refusal(circuit_breaker(breaker)(named("get_user")(failing())))
    assert heard == [
        ("circuit breaker", State.CLOSED, State.OPEN),
        ("users", State.CLOSED, State.OPEN),
    ]


def test_circuit_open_builds_the_message_and_retry_after() -> None:
    err = circuit_open(None, operation="get_user", retry_after=2.5)
    assert err.message == "circuit breaker for 'get_user' is open"
    assert err.headers == {"Retry-After": "3"}
    assert circuit_open("users", operation="get_user").message == "circuit 'users' is open"
    assert circuit_open(None, retry_after=0.1).headers == {"Retry-After": "1"}
    ctx = Context().with_value(OPERATION, "/pkg.Svc/Get")
    assert circuit_open(None, ctx=ctx, half_open=True).message == (
        "circuit breaker for '/pkg.Svc/Get' is half-open and its trial calls are busy"
    )
