"""Faults on a subset of instances behind the full client stack: bounded loss, full recovery.

Four :class:`~tests.faults.upstream.FaultyUpstream` instances behind the proxy of
:mod:`tests.faults.stack` (Endpointer over a fixed instance list -> P2C ->
lb_retry with a RetryBudget -> per-instance breaker -> per-attempt timeout ->
kitpy HTTP Client; each request carries a 2 s deadline, each attempt 0.5 s).  Each test runs
three bounded phases: healthy warm-up, fault, recovery.  Stated bounds:

* while one instance in four fails *every* request (latency spike past the
  attempt timeout, connection reset, partial response, 5xx), at least 97 % of
  requests succeed at the proxy; while two in four spoil half their requests
  with a random mix of all four faults, at least 95 %;
* after the fault stops and the breakers have closed again (a few trial
  requests, well under 10 s), 100 % of a 240-request window succeed and every
  instance, the healed ones included, serves again;
* the upstreams together receive at most ``(1 + ratio) * requests + floor``
  attempts, counted by the upstreams themselves (ratio 0.2, floor 10);
* the proxy answers every request at most 0.25 s past its deadline;
* every failure is UNAVAILABLE (503) or DEADLINE_EXCEEDED (504) with a kitpy
  error body: never a 500, never UNKNOWN, never a hang.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Sequence

import pytest

from kitpy.circuitbreaker import State
from kitpy.sd import FixedInstancer

from .stack import (
    Outcome,
    ProxyStack,
    StackConfig,
    check_deadlines,
    check_failures_are_coded,
    drive,
    proxy_stack,
    success_rate,
)
from .upstream import Fault, FaultyUpstream

CONFIG = StackConfig()
DEADLINE = 2.0
MARGIN = 0.25
LATENCY = 3.0
ONE_DEAD_BOUND = 0.97
FLAKY_BOUND = 0.95


@pytest.fixture
async def upstreams() -> AsyncIterator[list[FaultyUpstream]]:
    group = [FaultyUpstream(name) for name in "abcd"]
    for upstream in group:
        await upstream.start()
    try:
        yield group
    finally:
        for upstream in group:
            await upstream.stop()


@pytest.fixture
async def stack(upstreams: list[FaultyUpstream]) -> AsyncIterator[ProxyStack]:
    instancer = FixedInstancer([u.address for u in upstreams])
    async with proxy_stack(instancer, CONFIG) as running:
        async with asyncio.timeout(5):
            await running.endpointer.wait_for(lambda instances: len(instances) == len(upstreams))
        yield running
    instancer.close()


def served_by(outcomes: Sequence[Outcome]) -> Counter[str]:
    return Counter(o.by for o in outcomes if o.by is not None)


def check_common(
    stack: ProxyStack, upstreams: Sequence[FaultyUpstream], phases: Sequence[Sequence[Outcome]]
) -> None:
    everything = [o for phase in phases for o in phase]
    check_failures_are_coded(everything)
    check_deadlines(stack, everything, MARGIN)
    attempts = sum(u.received for u in upstreams)
    bound = (1 + CONFIG.budget_ratio) * len(everything) + CONFIG.budget_floor
    assert attempts <= bound, f"{attempts} upstream attempts for {len(everything)} requests"


async def recover(stack: ProxyStack, upstreams: Sequence[FaultyUpstream]) -> list[Outcome]:
    """Heal everything; once every breaker has closed again, expect 100 % over a window.

    Until the breakers close, half-open breakers admit one trial call each and a
    spent retry budget cannot cover the others, so those first requests may fail
    (with UNAVAILABLE: they are checked with the rest, but not for success).

    P2C also sidelines an instance for ``failure_penalty`` seconds after its last
    failed call, and a fault that cost a breaker fewer failures than its threshold
    leaves it closed: on a fast machine the whole recovery window then fits inside
    the penalty.  Healed upstreams behind closed breakers fail nothing, so one
    penalty period after the breakers have closed every instance is eligible again.
    """
    for upstream in upstreams:
        upstream.heal()
    settling: list[Outcome] = []
    async with asyncio.timeout(10):
        while any(b.state is not State.CLOSED for b in stack.breakers.values()):
            await asyncio.sleep(0.1)
            settling += await drive(
                stack.url, 8, concurrency=1, deadline=DEADLINE, start=30_000 + len(settling)
            )
    await asyncio.sleep(CONFIG.failure_penalty)
    after = await drive(stack.url, 240, deadline=DEADLINE, start=20_000)
    assert success_rate(after) == 1.0, Counter(o.code for o in after)
    assert set(served_by(after)) == {u.name for u in upstreams}  # the healed ones too
    return settling + after


@pytest.mark.parametrize(
    "fault",
    [Fault.LATENCY, Fault.RESET, Fault.PARTIAL, Fault.ERRORS],
    ids=["latency", "reset", "partial", "5xx"],
)
async def test_one_instance_failing_every_request(
    stack: ProxyStack,
    upstreams: list[FaultyUpstream],
    fault: Fault,
) -> None:
    warm = await drive(stack.url, 80, deadline=DEADLINE)
    assert success_rate(warm) == 1.0

    bad = upstreams[0]
    bad.inject(fault, latency=LATENCY)
    during = await drive(stack.url, 320, deadline=DEADLINE, start=10_000)
    assert bad.spoiled[fault] > 0  # the fault really happened
    rate = success_rate(during)
    assert rate >= ONE_DEAD_BOUND, (rate, Counter(o.code for o in during))

    after = await recover(stack, upstreams)
    check_common(stack, upstreams, [warm, during, after])


async def test_two_of_four_instances_flaky_with_every_fault_kind(
    stack: ProxyStack, upstreams: list[FaultyUpstream]
) -> None:
    warm = await drive(stack.url, 80, deadline=DEADLINE)
    assert success_rate(warm) == 1.0

    kinds = (Fault.LATENCY, Fault.RESET, Fault.PARTIAL, Fault.ERRORS)
    for upstream in upstreams[:2]:
        upstream.inject(*kinds, rate=0.5, latency=LATENCY)
    during = await drive(stack.url, 320, deadline=DEADLINE, start=10_000)
    assert sum((u.spoiled for u in upstreams[:2]), Counter()).keys() == set(kinds)
    rate = success_rate(during)
    assert rate >= FLAKY_BOUND, (rate, Counter(o.code for o in during))

    after = await recover(stack, upstreams)
    check_common(stack, upstreams, [warm, during, after])


async def test_a_5xx_burst_on_every_instance_is_shed_and_the_budget_caps_retries(
    stack: ProxyStack, upstreams: list[FaultyUpstream]
) -> None:
    warm = await drive(stack.url, 80, deadline=DEADLINE)
    assert success_rate(warm) == 1.0

    for upstream in upstreams:
        upstream.inject(Fault.ERRORS)
    before = sum(u.received for u in upstreams)
    during = await drive(stack.url, 200, deadline=DEADLINE, start=10_000)
    assert success_rate(during) == 0.0
    assert {(o.status, o.code) for o in during} == {(503, "UNAVAILABLE")}
    # the budget ran dry: most requests got no retry at all ...
    assert stack.budget.remaining() < 1
    # ... and the breakers shed most first attempts, so the upstreams saw less than one
    # attempt per request, against max_attempts (3) per request without either
    assert sum(u.received for u in upstreams) - before < len(during)

    after = await recover(stack, upstreams)
    check_common(stack, upstreams, [warm, during, after])
