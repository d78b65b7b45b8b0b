"""Shedding by queueing time: max_wait in the limiter's queue, LoopLag for the event loop's."""

from __future__ import annotations

import asyncio
import time

import pytest

from kitpy import Context, DeadlineExceeded, Unavailable
from kitpy.ratelimit import ConcurrencyLimiter, LoopLag


async def test_a_call_that_waits_longer_than_max_wait_is_shed_with_retry_after() -> None:
    limiter = ConcurrencyLimiter(1, max_waiting=10, max_wait=0.05)
    await limiter.acquire(Context())  # the only slot, held
    started = time.monotonic()
    with pytest.raises(Unavailable) as shed:
        await limiter.acquire(Context().with_timeout(5.0))
    assert time.monotonic() - started < 1.0  # shed at max_wait, not at the 5 s deadline
    assert "no concurrency slot within 0.05 s" in shed.value.message
    assert shed.value.headers == {"Retry-After": "1"}
    assert limiter.shed == 1
    assert limiter.waiting == 0
    # a deadline sooner than max_wait is still a deadline
    with pytest.raises(DeadlineExceeded):
        await limiter.acquire(Context().with_timeout(0.01))
    limiter.release()
    await limiter.acquire(Context())  # the slot is usable again
    assert limiter.in_flight == 1


def overloaded(lag: LoopLag) -> bool:
    """``lag.overloaded`` read afresh (mypy would narrow the attribute across a record())."""
    return lag.overloaded


async def test_while_the_loop_is_overloaded_every_new_call_is_shed_at_once() -> None:
    lag = LoopLag(max_lag=0.05, window=2)
    limiter = ConcurrencyLimiter(100, max_waiting=100, lag=lag)
    lag.record(0.2)
    assert not overloaded(lag)  # one slow sample is not a standing queue ...
    lag.record(0.3)
    assert overloaded(lag)  # ... two are
    assert not limiter.try_acquire()
    with pytest.raises(Unavailable, match="overloaded: work waits over 50 ms"):
        await limiter.acquire(Context())
    assert (limiter.in_flight, limiter.shed) == (0, 1)
    lag.record(0.0)
    assert not overloaded(lag)
    await limiter.acquire(Context())
    assert limiter.in_flight == 1


async def test_the_probe_sees_a_loop_kept_busy_and_its_recovery() -> None:
    async with LoopLag(max_lag=0.02, interval=0.005, window=2) as lag:
        async with asyncio.timeout(5):
            while not overloaded(lag):  # every iteration of the loop takes 40 ms
                time.sleep(0.04)  # noqa: ASYNC251 -- blocking the loop is the point
                await asyncio.sleep(0)
            assert lag.value > 0.02
            while overloaded(lag):  # noqa: ASYNC110 -- an idle loop: the probe wakes on time
                await asyncio.sleep(0.01)
    assert lag.value <= 0.02


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_wait"):
        ConcurrencyLimiter(1, max_wait=0)
    with pytest.raises(ValueError, match="max_lag"):
        LoopLag(max_lag=0)
