"""Benchmark: calling an endpoint through ``chain()`` vs hand-nested closures.

For 1, 5 and 10 pass-through middlewares, times a call through
``chain(*layers)(endpoint)`` and through the same number of ``async def``
closures nested by hand, alternating the two over several rounds and taking
the median of the per-round ratios.  Run: ``python bench/endpoint_chain.py``.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from kitpy import Context, Endpoint, chain

ROUNDS = 9
CALLS = 20_000


async def bare(ctx: Context, request: int) -> int:
    return request


def passthrough(next: Endpoint[int, int]) -> Endpoint[int, int]:
    async def endpoint(ctx: Context, request: int) -> int:
        return await next(ctx, request)

    return endpoint


def hand_nested(depth: int) -> Callable[[Context, int], Awaitable[int]]:
    """``depth`` closures written out without kitpy: the floor chain must match."""
    inner: Callable[[Context, int], Awaitable[int]] = bare
    for _ in range(depth):

        def wrap(nxt: Callable[[Context, int], Awaitable[int]]) -> Any:
            async def layer(ctx: Context, request: int) -> int:
                return await nxt(ctx, request)

            return layer

        inner = wrap(inner)
    return inner


async def time_calls(endpoint: Callable[[Context, int], Awaitable[int]]) -> float:
    ctx = Context()
    start = time.perf_counter_ns()
    for i in range(CALLS):
        await endpoint(ctx, i)
    return (time.perf_counter_ns() - start) / CALLS


async def measure(depth: int) -> tuple[float, float, float]:
    kit = chain(passthrough, *([passthrough] * (depth - 1)))(bare)
    hand = hand_nested(depth)
    await time_calls(kit)  # warm-up
    await time_calls(hand)
    kit_ns: list[float] = []
    hand_ns: list[float] = []
    ratios: list[float] = []
    for _ in range(ROUNDS):
        k = await time_calls(kit)
        h = await time_calls(hand)
        kit_ns.append(k)
        hand_ns.append(h)
        ratios.append(k / h)
    return statistics.median(kit_ns), statistics.median(hand_ns), statistics.median(ratios)


async def main() -> None:
    figures: dict[str, Any] = {"bench": "endpoint_chain"}
    print(f"{'layers':>6}  {'chain ns/call':>14}  {'hand ns/call':>13}  {'ratio':>6}")
    for depth in (1, 5, 10):
        kit, hand, ratio = await measure(depth)
        print(f"{depth:>6}  {kit:>14.0f}  {hand:>13.0f}  {ratio:>6.3f}")
        figures[f"chain_{depth}_ns"] = round(kit)
        figures[f"hand_{depth}_ns"] = round(hand)
        figures[f"ratio_{depth}"] = round(ratio, 3)
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
