"""Properties every breaker must have through circuit_breaker(): native and pybreaker-adapted."""

from __future__ import annotations

import asyncio

import pytest

from kitpy import Context, Endpoint
from kitpy.circuitbreaker import State, circuit_breaker, export_state
from kitpy.errors import CircuitOpen, InvalidArgument, NotFound, Unavailable
from kitpy.testing import FakeClock

from .harness import BUILDERS, Rig, Scripted, settle, state_of


@pytest.fixture(params=sorted(BUILDERS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def build(kind: str, fail_max: int = 3, **kwargs: int) -> Rig:
    return BUILDERS[kind](fail_max, FakeClock(), **kwargs)


async def fail(ep: Endpoint[str, str], n: int, exc: type[BaseException] = Unavailable) -> None:
    for _ in range(n):
        with pytest.raises(exc):
            await ep(Context(), "x")


async def test_trips_after_consecutive_failures_and_sheds_without_calling(kind: str) -> None:
    rig = build(kind, fail_max=3)
    upstream = Scripted()
    ep = circuit_breaker(rig.breaker)(upstream)
    assert await ep(Context(), "ok") == "ok"
    upstream.fail_with = Unavailable("down")
    await fail(ep, 2)
    assert state_of(rig.breaker) is State.CLOSED
    await fail(ep, 1)
    assert state_of(rig.breaker) is State.OPEN
    assert upstream.calls == 4
    for _ in range(5):
        with pytest.raises(CircuitOpen) as info:
            await ep(Context(), "x")
        assert info.value.headers is not None
        assert int(info.value.headers["Retry-After"]) >= 1
    assert upstream.calls == 4  # shed: the endpoint was not called


async def test_success_resets_the_consecutive_count(kind: str) -> None:
    rig = build(kind, fail_max=3)
    upstream = Scripted()
    ep = circuit_breaker(rig.breaker)(upstream)
    for _ in range(3):
        upstream.fail_with = Unavailable()
        await fail(ep, 2)
        upstream.fail_with = None
        assert await ep(Context(), "ok") == "ok"
    assert state_of(rig.breaker) is State.CLOSED


async def test_client_faults_do_not_count(kind: str) -> None:
    rig = build(kind, fail_max=2)
    upstream = Scripted()
    ep = circuit_breaker(rig.breaker)(upstream)
    upstream.fail_with = NotFound("missing")
    await fail(ep, 10, NotFound)
    upstream.fail_with = InvalidArgument("bad")
    await fail(ep, 10, InvalidArgument)
    assert state_of(rig.breaker) is State.CLOSED
    assert upstream.calls == 20


async def test_cancelled_calls_record_nothing(kind: str) -> None:
    rig = build(kind, fail_max=2)
    upstream = Scripted()
    ep = circuit_breaker(rig.breaker)(upstream)
    upstream.fail_with = Unavailable()
    await fail(ep, 1)
    # cancel several in-flight calls: none counts as a failure
    upstream.hold = asyncio.Event()
    tasks = [asyncio.ensure_future(ep(Context(), "x")) for _ in range(3)]
    await settle()
    for task in tasks:
        task.cancel()
    async with asyncio.timeout(5):
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    assert state_of(rig.breaker) is State.CLOSED
    upstream.hold = None
    await fail(ep, 1)  # the second real failure trips it
    assert state_of(rig.breaker) is State.OPEN


async def test_half_open_admits_one_trial_and_success_closes(kind: str) -> None:
    rig = build(kind, fail_max=1)
    upstream = Scripted()
    ep = circuit_breaker(rig.breaker)(upstream)
    upstream.fail_with = Unavailable()
    await fail(ep, 1)
    rig.wait_out_reset()
    upstream.fail_with = None
    upstream.hold = asyncio.Event()
    tasks = [asyncio.ensure_future(ep(Context(), f"t{i}")) for i in range(5)]
    await settle()
    assert upstream.entered == 2  # the failure + exactly one trial
    upstream.hold.set()
    async with asyncio.timeout(5):
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[0] == "t0"
    assert all(isinstance(r, CircuitOpen) for r in results[1:])
    assert state_of(rig.breaker) is State.CLOSED
    upstream.hold = None
    assert await ep(Context(), "after") == "after"


async def test_failed_trial_reopens(kind: str) -> None:
    rig = build(kind, fail_max=1)
    upstream = Scripted()
    ep = circuit_breaker(rig.breaker)(upstream)
    upstream.fail_with = Unavailable()
    await fail(ep, 1)
    rig.wait_out_reset()
    await fail(ep, 1)  # the trial fails
    assert state_of(rig.breaker) is State.OPEN
    calls = upstream.calls
    with pytest.raises(CircuitOpen):
        await ep(Context(), "x")
    assert upstream.calls == calls


async def test_cancelled_trial_frees_the_slot(kind: str) -> None:
    rig = build(kind, fail_max=1)
    upstream = Scripted()
    ep = circuit_breaker(rig.breaker)(upstream)
    upstream.fail_with = Unavailable()
    await fail(ep, 1)
    rig.wait_out_reset()
    upstream.fail_with = None
    upstream.hold = asyncio.Event()
    trial = asyncio.ensure_future(ep(Context(), "trial"))
    await settle()
    with pytest.raises(CircuitOpen):
        await ep(Context(), "busy")
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(5):
            await trial
    assert state_of(rig.breaker) is State.HALF_OPEN
    upstream.hold = None
    assert await ep(Context(), "next trial") == "next trial"
    assert state_of(rig.breaker) is State.CLOSED


async def test_stale_success_does_not_close_an_open_breaker(kind: str) -> None:
    rig = build(kind, fail_max=1)
    slow = Scripted()
    slow.hold = asyncio.Event()
    slow_ep = circuit_breaker(rig.breaker)(slow)
    failing = Scripted()
    failing.fail_with = Unavailable()
    failing_ep = circuit_breaker(rig.breaker)(failing)
    pending = asyncio.ensure_future(slow_ep(Context(), "slow"))
    await settle()
    await fail(failing_ep, 1)
    assert state_of(rig.breaker) is State.OPEN
    slow.hold.set()
    async with asyncio.timeout(5):
        assert await pending == "slow"
    assert state_of(rig.breaker) is State.OPEN


async def test_state_listeners_and_gauge(kind: str) -> None:
    rig = build(kind, fail_max=1)
    changes: list[tuple[State, State]] = []
    rig.breaker.add_listener(lambda name, old, new: changes.append((old, new)))

    class Gauge:
        def __init__(self) -> None:
            self.values: list[float] = []

        def set(self, value: float) -> None:
            self.values.append(value)

    gauge = Gauge()
    export_state(rig.breaker, gauge)
    upstream = Scripted()
    ep = circuit_breaker(rig.breaker)(upstream)
    upstream.fail_with = Unavailable()
    await fail(ep, 1)
    rig.wait_out_reset()
    upstream.fail_with = None
    assert await ep(Context(), "x") == "x"
    assert changes == [
        (State.CLOSED, State.OPEN),
        (State.OPEN, State.HALF_OPEN),
        (State.HALF_OPEN, State.CLOSED),
    ]
    assert gauge.values == [0.0, 2.0, 1.0, 0.0]


async def test_two_trials_need_two_successes(kind: str) -> None:
    rig = build(kind, fail_max=1, half_open_max_calls=2)
    if rig.kind == "pybreaker":
        rig.breaker.breaker.success_threshold = 2  # type: ignore[attr-defined]
    upstream = Scripted()
    ep = circuit_breaker(rig.breaker)(upstream)
    upstream.fail_with = Unavailable()
    await fail(ep, 1)
    rig.wait_out_reset()
    upstream.fail_with = None
    upstream.hold = asyncio.Event()
    tasks = [asyncio.ensure_future(ep(Context(), str(i))) for i in range(3)]
    await settle()
    assert upstream.entered == 3  # the failure + two trials
    upstream.hold.set()
    async with asyncio.timeout(5):
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[:2] == ["0", "1"]
    assert isinstance(results[2], CircuitOpen)
    assert state_of(rig.breaker) is State.CLOSED
