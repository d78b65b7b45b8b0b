"""call_metrics: counts by method and code, latency in seconds, children reused."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from kitpy import Context, InvalidArgument, NotFound, named
from kitpy.metrics import call_metrics
from kitpy.metrics.memory import MemoryCounter, MemoryHistogram
from kitpy.testing import FakeClock, RequestMetrics


async def test_counts_and_latency_by_method_and_code() -> None:
    metrics = RequestMetrics()
    clock = FakeClock()

    async def lookup(ctx: Context, request: int) -> int:
        clock.advance(0.5)
        if request < 0:
            raise InvalidArgument("negative")
        if request == 0:
            raise NotFound("zero")
        if request > 100:
            raise RuntimeError("too big")
        return request * 2

    endpoint = call_metrics(metrics.requests, metrics.latency, clock=clock)(named("lookup")(lookup))
    assert await endpoint(Context(), 2) == 4
    assert await endpoint(Context(), 3) == 6
    for bad, exc in ((-1, InvalidArgument), (-2, InvalidArgument), (0, NotFound)):
        with pytest.raises(exc):
            await endpoint(Context(), bad)
    with pytest.raises(RuntimeError):
        await endpoint(Context(), 101)
    metrics.assert_count(2, method="lookup")
    metrics.assert_count(2, method="lookup", code="INVALID_ARGUMENT")
    metrics.assert_count(1, method="lookup", code="NOT_FOUND")
    metrics.assert_count(1, method="lookup", code="UNKNOWN")
    assert metrics.latencies(method="lookup") == [0.5, 0.5]
    assert metrics.counts() == {
        ("lookup", "OK"): 2,
        ("lookup", "INVALID_ARGUMENT"): 2,
        ("lookup", "NOT_FOUND"): 1,
        ("lookup", "UNKNOWN"): 1,
    }


async def test_explicit_method_name_and_cancellation() -> None:
    metrics = RequestMetrics()

    async def hang(ctx: Context, request: int) -> int:
        await asyncio.sleep(3600)
        return request

    endpoint = call_metrics(metrics.requests, metrics.latency, name="Hang")(hang)

    async def call() -> int:
        return await endpoint(Context(), 1)

    task = asyncio.create_task(call())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(5):
            await task
    metrics.assert_count(1, method="Hang", code="CANCELLED")


class CountingCounter(MemoryCounter):
    """Counts labels() calls, to check children are resolved once."""

    def __init__(self) -> None:
        super().__init__("requests", labelnames=("method", "code"))
        self.lookups = 0

    def labels(self, **values: str) -> MemoryCounter:
        self.lookups += 1
        return super().labels(**values)


async def test_label_children_resolved_once_per_code() -> None:
    requests = CountingCounter()
    latency = MemoryHistogram("latency", labelnames=("method", "code"))

    async def flaky(ctx: Context, request: int) -> int:
        if request % 2:
            raise NotFound("odd")
        return request

    endpoint = call_metrics(requests, latency)(named("flaky")(flaky))
    assert requests.lookups == 1  # the OK child, at wrap time
    for i in range(10):
        with contextlib.suppress(NotFound):
            await endpoint(Context(), i)
    assert requests.lookups == 2  # + NOT_FOUND, the first time it happened
    assert requests.value(method="flaky", code="OK") == 5
    assert requests.value(method="flaky", code="NOT_FOUND") == 5
