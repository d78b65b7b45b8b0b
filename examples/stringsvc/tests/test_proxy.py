"""The proxying service without a network: upstream failures become its own, and it skips itself."""

from __future__ import annotations

import asyncio

import pytest

from kitpy import (
    CircuitOpen,
    Context,
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    KitError,
    RateLimited,
    Unavailable,
)
from kitpy.resilience import RetryError
from kitpy.sd import Instance, Publisher

from ..endpoints import UppercaseRequest, UppercaseResponse
from ..proxy import INSTANCE_ID, ProxyingService, WithoutSelf
from ..service import BasicStringService


def failing_upstream(error: BaseException) -> ProxyingService:
    async def uppercase(ctx: Context, request: UppercaseRequest) -> UppercaseResponse:
        raise error

    return ProxyingService(BasicStringService(), uppercase)


@pytest.mark.parametrize(
    "error",
    [
        CircuitOpen("circuit '10.0.0.7:8080' is open"),
        Unavailable("no instances"),
        Internal("upstream bug"),
        ConnectionRefusedError(111, "Connect call failed"),
    ],
)
async def test_upstream_failures_become_the_services_own_unavailable(error: Exception) -> None:
    with pytest.raises(Unavailable) as info:
        await failing_upstream(error).uppercase(Context(), "x")
    assert info.value.message == "uppercase is unavailable"
    assert info.value.__cause__ is error  # kept for the logs, not shown to the caller


async def test_the_proxys_rate_limit_stays_429_in_the_services_words() -> None:
    error = RateLimited("rate limit exceeded for key ''")
    with pytest.raises(RateLimited) as info:
        await failing_upstream(error).uppercase(Context(), "x")
    assert info.value.message == "uppercase is over its rate limit"
    assert info.value.__cause__ is error


@pytest.mark.parametrize(
    "error", [InvalidArgument("empty string"), DeadlineExceeded("deadline exceeded")]
)
async def test_the_callers_own_errors_pass_through_even_after_retries(error: KitError) -> None:
    for raised in (error, RetryError([Unavailable("restarting"), error])):
        with pytest.raises(type(error)) as info:
            await failing_upstream(raised).uppercase(Context(), "x")
        assert info.value.message == error.message  # not "2 attempts failed; last: ..."


async def test_retries_spent_on_an_open_circuit_read_unavailable() -> None:
    error = RetryError([Unavailable("restarting"), CircuitOpen("circuit 'x' is open")])
    with pytest.raises(Unavailable) as info:
        await failing_upstream(error).uppercase(Context(), "x")
    assert info.value.message == "uppercase is unavailable"


async def test_the_context_reaches_the_upstream_and_count_stays_local() -> None:
    seen: list[Context] = []

    async def uppercase(ctx: Context, request: UppercaseRequest) -> UppercaseResponse:
        seen.append(ctx)
        return UppercaseResponse(v=request.s.upper())

    svc = ProxyingService(BasicStringService(), uppercase)
    ctx = Context().with_timeout(5.0)
    assert await svc.uppercase(ctx, "up") == "UP"
    assert seen == [ctx]
    assert await svc.count(ctx, "four") == 4


async def test_without_self_leaves_out_this_processs_registrations() -> None:
    registry = Publisher()
    events = WithoutSelf(registry, "me").subscribe()
    other = Instance("127.0.0.1:7001", metadata={INSTANCE_ID: "other"})
    me = Instance("127.0.0.1:7002", metadata={INSTANCE_ID: "me"})
    plain = Instance("127.0.0.1:7003")  # a static:// address has no id
    async with asyncio.timeout(5):
        registry.update([other, plain])
        assert (await anext(events)).instances == (other, plain)
        registry.update([other, me, plain])  # this process's own registration comes back
        assert (await anext(events)).instances == (other, plain)
        registry.fail(ConnectionError("registry down"))
        assert isinstance((await anext(events)).error, ConnectionError)  # errors pass as is
    registry.close()
