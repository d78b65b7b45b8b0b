"""TimeoutWheel: asyncio.timeout's behaviour, on timers shared per tick."""

from __future__ import annotations

import asyncio

import pytest

from kitpy.timeouts import MAX_TICK, MIN_TICK, TimeoutWheel, _slot_end


async def test_a_block_that_overruns_is_cancelled_and_raises_timeout_error() -> None:
    wheel = TimeoutWheel()
    cancelled = asyncio.Event()
    loop = asyncio.get_running_loop()
    started = loop.time()
    scope = wheel.timeout(0.05)

    async def overrun() -> None:
        async with scope:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancelled.set()
                raise

    with pytest.raises(TimeoutError):
        await overrun()
    elapsed = loop.time() - started
    assert cancelled.is_set()
    assert scope.expired()
    assert 0.05 <= elapsed < 0.05 + MIN_TICK + 0.5  # never early; late by a tick (plus a slow CI)
    assert wheel.pending == 0


async def test_a_block_that_finishes_in_time_is_left_alone_and_leaves_its_slot() -> None:
    wheel = TimeoutWheel()
    async with wheel.timeout(5) as scope:
        assert wheel.pending == 1
        await asyncio.sleep(0)
    assert not scope.expired()
    assert wheel.pending == 0
    await asyncio.sleep(0.01)
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0


async def test_none_sets_no_timeout() -> None:
    wheel = TimeoutWheel()
    async with wheel.timeout(None) as scope:
        assert wheel.pending == 0
        await asyncio.sleep(0.01)
    assert not scope.expired()


async def test_a_timeout_error_of_the_block_itself_is_not_the_wheels() -> None:
    wheel = TimeoutWheel()
    scope = wheel.timeout(5)
    with pytest.raises(TimeoutError, match="the block's own"):
        async with scope:
            raise TimeoutError("the block's own")
    assert not scope.expired()
    assert wheel.pending == 0


async def test_a_cancellation_from_elsewhere_passes_through() -> None:
    wheel = TimeoutWheel()
    entered = asyncio.Event()

    async def work() -> None:
        async with wheel.timeout(5):
            entered.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(work())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert wheel.pending == 0


async def test_a_cancellation_from_elsewhere_while_expiring_stays_a_cancellation() -> None:
    wheel = TimeoutWheel()
    scope = wheel.timeout(5)

    async def work() -> None:
        async with scope:
            await asyncio.sleep(10)

    task = asyncio.create_task(work())
    await asyncio.sleep(0)  # entered
    scope._expire()  # what the slot's timer does when its time comes...
    task.cancel()  # ...and, before the task runs again, a request from elsewhere
    with pytest.raises(asyncio.CancelledError):
        await task
    assert scope.expired()


async def test_an_outer_timeout_that_expires_first_is_the_outers() -> None:
    wheel = TimeoutWheel()
    inner = wheel.timeout(5)

    async def overrun() -> None:
        async with asyncio.timeout(0.02), inner:
            await asyncio.sleep(10)

    with pytest.raises(TimeoutError):
        await overrun()
    assert not inner.expired()


async def test_an_inner_timeout_that_expires_first_is_the_inners() -> None:
    wheel = TimeoutWheel()
    outer, inner = wheel.timeout(5), wheel.timeout(0.02)
    async with outer:
        with pytest.raises(TimeoutError):
            async with inner:
                await asyncio.sleep(10)
        await asyncio.sleep(0)  # the outer scope still lets the task run
    assert inner.expired()
    assert not outer.expired()


async def test_many_timeouts_share_a_few_timers() -> None:
    wheel = TimeoutWheel()
    release = asyncio.Event()

    async def hold() -> None:
        async with wheel.timeout(30):
            await release.wait()

    loop = asyncio.get_running_loop()
    timers_before = len(loop._scheduled)  # type: ignore[attr-defined]  # what we compare against
    tasks = [asyncio.create_task(hold()) for _ in range(500)]
    await asyncio.sleep(0)
    assert wheel.pending == 500
    assert len(loop._scheduled) - timers_before <= 2  # type: ignore[attr-defined]
    release.set()
    await asyncio.gather(*tasks)
    assert wheel.pending == 0


async def test_a_delay_of_zero_or_less_expires_at_the_next_tick() -> None:
    wheel = TimeoutWheel()
    for delay in (0.0, -1.0):
        scope = wheel.timeout(delay)
        with pytest.raises(TimeoutError):
            async with scope:
                await asyncio.sleep(1)
        assert scope.expired()


async def test_a_scope_is_entered_once() -> None:
    wheel = TimeoutWheel()
    scope = wheel.timeout(1)
    async with scope:
        pass
    with pytest.raises(RuntimeError, match="once"):
        async with scope:
            pass


def test_the_wheel_works_on_one_loop_after_another() -> None:
    wheel = TimeoutWheel()

    async def overrun() -> bool:
        scope = wheel.timeout(0.01)
        try:
            async with scope:
                await asyncio.sleep(1)
        except TimeoutError:
            return scope.expired()
        return False

    assert asyncio.run(overrun())
    assert asyncio.run(overrun())


@pytest.mark.parametrize(
    ("delay", "tick"),
    [
        (0.0, MIN_TICK),
        (0.05, MIN_TICK),
        (1.0, 2.0**-7),  # 1/64 s > 2**-7 = 1/128 s
        (30.0, 0.25),  # 30/64 = 0.47 -> 0.25
        (64.0, MAX_TICK),
        (3600.0, MAX_TICK),
    ],
)
def test_slots_end_on_a_tick_no_later_than_a_64th_of_the_delay(delay: float, tick: float) -> None:
    when = 1000.123456
    end = _slot_end(when, delay)
    assert when <= end < when + tick
    assert (end / tick).is_integer()


async def test_the_plain_with_form_times_out_and_leaves_as_async_with_does() -> None:
    wheel = TimeoutWheel()
    with wheel.timeout(5) as kept:  # in time: nothing cancelled, the slot left
        assert wheel.pending == 1
        await asyncio.sleep(0)
    assert not kept.expired()
    assert wheel.pending == 0
    scope = wheel.timeout(0.02)

    async def overrun() -> None:
        with scope:
            await asyncio.sleep(10)

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(overrun(), timeout=5)
    assert scope.expired()
    assert wheel.pending == 0


async def test_the_plain_with_form_lets_a_cancellation_from_elsewhere_through() -> None:
    wheel = TimeoutWheel()
    scope = wheel.timeout(30)
    entered = asyncio.Event()

    async def held() -> None:
        with scope:
            entered.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(held())
    await asyncio.wait_for(entered.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=5)
    assert not scope.expired()
    assert wheel.pending == 0
