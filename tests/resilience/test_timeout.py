"""timeout(): narrows the Context deadline and enforces it."""

from __future__ import annotations

import asyncio

import pytest

from kitpy import Context
from kitpy.errors import DeadlineExceeded
from kitpy.resilience import timeout
from kitpy.testing import FakeClock


async def test_narrows_the_deadline_seen_below() -> None:
    clock = FakeClock()
    seen: list[float | None] = []

    @timeout(0.5)
    async def ep(ctx: Context, request: int) -> int:
        seen.append(ctx.deadline)
        return request

    assert await ep(Context(clock=clock), 1) == 1
    assert seen == [clock() + 0.5]
    # a sooner caller deadline wins
    assert await ep(Context(clock=clock).with_timeout(0.1), 2) == 2
    assert seen[-1] == pytest.approx(clock() + 0.1)


async def test_enforces_the_deadline() -> None:
    cancelled = asyncio.Event()

    @timeout(0.05)
    async def hang(ctx: Context, request: int) -> int:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return request

    async with asyncio.timeout(5):
        with pytest.raises(DeadlineExceeded, match="timed out"):
            await hang(Context(), 1)
    assert cancelled.is_set()


async def test_expired_context_fails_without_calling() -> None:
    clock = FakeClock()
    calls = 0

    @timeout(1.0)
    async def ep(ctx: Context, request: int) -> int:
        nonlocal calls
        calls += 1
        return request

    ctx = Context(clock=clock).with_timeout(0.1)
    clock.advance(0.2)
    with pytest.raises(DeadlineExceeded, match="already passed"):
        await ep(ctx, 1)
    assert calls == 0


async def test_endpoints_own_timeout_error_passes_through() -> None:
    @timeout(5.0)
    async def ep(ctx: Context, request: int) -> int:
        raise TimeoutError("inner")

    with pytest.raises(TimeoutError, match="inner"):
        await ep(Context(), 1)


def test_rejects_non_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        timeout(0)
