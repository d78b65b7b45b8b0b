"""Benchmark: success-path overhead of each resilience middleware, and token bucket vs ``limits``.

For every middleware, times ``await endpoint(ctx, i)`` through it and through the
bare endpoint, alternating the two over several rounds and taking the median of
the per-round ratios (the machine is shared and noisy).  Then times one check of
the in-process :class:`~kitpy.ratelimit.TokenBucket` against one hit of the
``limits`` library's in-memory moving window, the same way.
Run: ``python bench/resilience.py``.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import limits
import limits.storage
import limits.strategies
import pybreaker

from kitpy import Context, Endpoint
from kitpy.circuitbreaker import CircuitBreaker, circuit_breaker
from kitpy.circuitbreaker.pybreaker_adapter import PyBreakerAdapter
from kitpy.ratelimit import TokenBucket, concurrency_limit, rate_limit
from kitpy.resilience import RetryBudget, fallback, retry, timeout

ROUNDS = 7
CALLS = 20_000
CHECKS = 50_000


async def bare(ctx: Context, request: int) -> int:
    return request


async def raw_timeout(ctx: Context, request: int) -> int:
    """What ``timeout()`` costs at least: one ``asyncio.timeout`` scope, written by hand."""
    async with asyncio.timeout(60.0):
        return await bare(ctx, request)


async def measure_pair(
    wrapped: Endpoint[int, int], raw: Endpoint[int, int]
) -> tuple[float, float, float]:
    await time_calls(wrapped)
    await time_calls(raw)
    kit: list[float] = []
    ref: list[float] = []
    ratios: list[float] = []
    for _ in range(ROUNDS):
        k = await time_calls(wrapped)
        r = await time_calls(raw)
        kit.append(k)
        ref.append(r)
        ratios.append(k / r)
    return statistics.median(kit), statistics.median(ref), statistics.median(ratios)


async def degraded(ctx: Context, request: int, error: BaseException) -> int:
    return -1


def middlewares() -> dict[str, Callable[[Endpoint[int, int]], Endpoint[int, int]]]:
    plenty = 1e12  # limiters that never say no: measure the success path
    return {
        "timeout": timeout(60.0),
        "retry": retry(max_attempts=3, budget=RetryBudget()),
        "circuit_breaker": circuit_breaker(CircuitBreaker()),
        "pybreaker_adapter": circuit_breaker(PyBreakerAdapter(pybreaker.CircuitBreaker())),
        "rate_limit": rate_limit(TokenBucket(rate=plenty, burst=10**9)),
        "rate_limit_wait": rate_limit(TokenBucket(rate=plenty, burst=10**9), wait=True),
        "concurrency_limit": concurrency_limit(1000),
        "fallback": fallback(degraded),
    }


async def time_calls(endpoint: Endpoint[int, int]) -> float:
    ctx = Context()
    start = time.perf_counter_ns()
    for i in range(CALLS):
        await endpoint(ctx, i)
    return (time.perf_counter_ns() - start) / CALLS


async def measure(wrapped: Endpoint[int, int]) -> tuple[float, float, float]:
    return await measure_pair(wrapped, bare)


def time_checks(check: Callable[[], Any]) -> float:
    start = time.perf_counter_ns()
    for _ in range(CHECKS):
        check()
    return (time.perf_counter_ns() - start) / CHECKS


def limiter_checks() -> tuple[float, float, float]:
    """TokenBucket.allow vs limits' in-memory moving window hit, both at 1000/s."""
    bucket = TokenBucket(rate=1000.0, burst=1000)
    item = limits.parse("1000/second")
    moving = limits.strategies.MovingWindowRateLimiter(limits.storage.MemoryStorage())

    def limits_hit() -> bool:
        return moving.hit(item, "bench")

    time_checks(bucket.allow)
    time_checks(limits_hit)
    ours: list[float] = []
    theirs: list[float] = []
    ratios: list[float] = []
    for _ in range(ROUNDS):
        o = time_checks(bucket.allow)
        t = time_checks(limits_hit)
        ours.append(o)
        theirs.append(t)
        ratios.append(o / t)
    return statistics.median(ours), statistics.median(theirs), statistics.median(ratios)


async def main() -> None:
    figures: dict[str, Any] = {"bench": "resilience"}
    print(f"{'middleware':<18} {'ns/call':>9} {'bare ns':>8} {'overhead ns':>12} {'ratio':>6}")
    bare_all: list[float] = []
    for name, middleware in middlewares().items():
        wrapped: Callable[[Context, int], Awaitable[int]] = middleware(bare)
        kit, raw, ratio = await measure(wrapped)
        bare_all.append(raw)
        overhead = kit - raw
        print(f"{name:<18} {kit:>9.0f} {raw:>8.0f} {overhead:>12.0f} {ratio:>6.2f}")
        figures[f"{name}_ns"] = round(kit)
        figures[f"{name}_overhead_ns"] = round(overhead)
        figures[f"ratio_{name}"] = round(ratio, 3)
    figures["bare_ns"] = round(statistics.median(bare_all))
    kit, raw, ratio = await measure_pair(timeout(60.0)(bare), raw_timeout)
    print(f"{'timeout vs raw asyncio.timeout':<30} {kit:>9.0f} {raw:>8.0f} {ratio:>6.2f}")
    figures["raw_asyncio_timeout_ns"] = round(raw)
    figures["ratio_timeout_vs_asyncio_timeout"] = round(ratio, 3)
    ours, theirs, ratio = limiter_checks()
    print()
    print(f"{'limiter check':<30} {'ns/check':>9}")
    print(f"{'kitpy TokenBucket.allow':<30} {ours:>9.0f}")
    print(f"{'limits moving window (memory)':<30} {theirs:>9.0f}")
    print(f"{'ratio (bucket / limits)':<30} {ratio:>9.3f}")
    figures["token_bucket_ns"] = round(ours)
    figures["limits_moving_window_ns"] = round(theirs)
    figures["ratio_token_bucket_vs_limits"] = round(ratio, 3)
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
