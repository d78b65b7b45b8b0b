"""concurrency_limit(): a bulkhead that sheds at once or queues, never past the deadline."""

from __future__ import annotations

import asyncio

import pytest

from kitpy import Context
from kitpy.endpoint import endpoint_name, named
from kitpy.errors import Code, DeadlineExceeded, RateLimited, Unavailable
from kitpy.ratelimit import ConcurrencyLimiter, concurrency_limit


class Gate:
    """An endpoint that holds every call until released; counts concurrency."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.active = 0
        self.peak = 0
        self.calls = 0

    async def __call__(self, ctx: Context, request: int) -> int:
        self.calls += 1
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await self.release.wait()
        finally:
            self.active -= 1
        return request


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_sheds_excess_at_once() -> None:
    gate = Gate()
    ep = concurrency_limit(2)(gate)
    tasks = [asyncio.ensure_future(ep(Context(), i)) for i in range(2)]
    await settle()
    with pytest.raises(Unavailable, match="too many concurrent"):
        await ep(Context(), 99)
    gate.release.set()
    async with asyncio.timeout(5):
        assert await asyncio.gather(*tasks) == [0, 1]
    assert gate.calls == 2
    assert gate.peak == 2
    assert await ep(Context(), 3) == 3  # slots came back


async def test_reject_code_resource_exhausted() -> None:
    gate = Gate()
    ep = concurrency_limit(1, reject_code=Code.RESOURCE_EXHAUSTED)(gate)
    task = asyncio.ensure_future(ep(Context(), 1))
    await settle()
    with pytest.raises(RateLimited):
        await ep(Context(), 2)
    gate.release.set()
    async with asyncio.timeout(5):
        await task


async def test_queue_waits_in_order_and_is_bounded() -> None:
    limiter = ConcurrencyLimiter(1, max_waiting=2)
    order: list[int] = []

    async def work(ctx: Context, request: int) -> int:
        order.append(request)
        await asyncio.sleep(0)
        return request

    gate = Gate()
    hold = concurrency_limit(1, limiter=limiter)(gate)
    ep = concurrency_limit(1, limiter=limiter)(work)
    first = asyncio.ensure_future(hold(Context(), 0))
    await settle()
    waiting = [asyncio.ensure_future(ep(Context(), i)) for i in (1, 2)]
    await settle()
    assert limiter.waiting == 2
    with pytest.raises(Unavailable):
        await ep(Context(), 3)  # queue full
    gate.release.set()
    async with asyncio.timeout(5):
        assert await asyncio.gather(first, *waiting) == [0, 1, 2]
    assert order == [1, 2]
    assert limiter.in_flight == 0
    assert limiter.waiting == 0


async def test_waiting_never_outlasts_the_deadline() -> None:
    gate = Gate()
    limiter = ConcurrencyLimiter(1, max_waiting=5)
    ep = concurrency_limit(1, limiter=limiter)(gate)
    holder = asyncio.ensure_future(ep(Context(), 0))
    await settle()
    async with asyncio.timeout(5):
        with pytest.raises(DeadlineExceeded, match="waiting for a concurrency slot"):
            await ep(Context().with_timeout(0.05), 1)
    assert limiter.waiting == 0
    assert gate.calls == 1
    gate.release.set()
    async with asyncio.timeout(5):
        await holder
    assert limiter.in_flight == 0


async def test_expired_deadline_is_not_queued() -> None:
    gate = Gate()
    limiter = ConcurrencyLimiter(1, max_waiting=5)
    ep = concurrency_limit(1, limiter=limiter)(gate)
    holder = asyncio.ensure_future(ep(Context(), 0))
    await settle()
    ctx = Context().with_timeout(0.0)
    with pytest.raises(DeadlineExceeded):
        await ep(ctx, 1)
    gate.release.set()
    async with asyncio.timeout(5):
        await holder


async def test_cancelled_waiter_frees_its_place_and_slots_are_not_lost() -> None:
    gate = Gate()
    limiter = ConcurrencyLimiter(1, max_waiting=1)
    ep = concurrency_limit(1, limiter=limiter)(gate)
    holder = asyncio.ensure_future(ep(Context(), 0))
    await settle()
    waiter = asyncio.ensure_future(ep(Context(), 1))
    await settle()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(5):
            await waiter
    assert limiter.waiting == 0
    gate.release.set()
    async with asyncio.timeout(5):
        await holder
    assert limiter.in_flight == 0
    assert gate.calls == 1


async def test_slot_handed_over_as_waiter_is_cancelled_is_passed_on() -> None:
    gate = Gate()
    limiter = ConcurrencyLimiter(1, max_waiting=2)
    ep = concurrency_limit(1, limiter=limiter)(gate)
    holder = asyncio.ensure_future(ep(Context(), 0))
    await settle()
    second = asyncio.ensure_future(ep(Context(), 1))
    third = asyncio.ensure_future(ep(Context(), 2))
    await settle()
    # free the holder's slot: it is handed to `second`, which is cancelled before it runs
    gate.release.set()
    await asyncio.sleep(0)
    second.cancel()
    async with asyncio.timeout(5):
        results = await asyncio.gather(holder, second, third, return_exceptions=True)
    assert results[0] == 0
    assert results[2] == 2  # the slot reached the third caller
    assert limiter.in_flight == 0


def test_validates() -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        ConcurrencyLimiter(0)
    with pytest.raises(ValueError, match="max_waiting"):
        ConcurrencyLimiter(1, max_waiting=-1)


def test_the_wrapped_endpoint_keeps_its_name() -> None:
    assert endpoint_name(concurrency_limit(1)(named("op")(Gate()))) == "op"
