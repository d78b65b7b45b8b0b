"""Benchmark: reading a live setting on a hot path vs reading a plain settings attribute.

A hot path that consults a limit on every call reads ``live.value`` (a
:class:`kitpy.config.Live`) where it would otherwise read a frozen dataclass
field.  Both loops do the same work (read, compare, count); rounds alternate
and the figure is the median of the per-round ratios.  The bar:
``ratio_read`` <= 1.05.  Run: ``python bench/config.py``.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from typing import Any

from kitpy.config import Live

ROUNDS = 15
READS = 200_000


@dataclass(frozen=True)
class Settings:
    rate_limit: float = 100.0


def read_plain(settings: Settings, n: int) -> int:
    hits = 0
    for i in range(n):
        if i < settings.rate_limit:
            hits += 1
    return hits


def read_live(live: Live[float], n: int) -> int:
    hits = 0
    for i in range(n):
        if i < live.value:
            hits += 1
    return hits


def timed(fn: Any, arg: Any) -> float:
    start = time.perf_counter_ns()
    fn(arg, READS)
    return (time.perf_counter_ns() - start) / READS


def main() -> None:
    settings = Settings()
    live = Live(100.0, name="rate_limit")
    timed(read_plain, settings)  # warm-up
    timed(read_live, live)
    plain_ns: list[float] = []
    live_ns: list[float] = []
    ratios: list[float] = []
    for _ in range(ROUNDS):
        p = timed(read_plain, settings)
        v = timed(read_live, live)
        plain_ns.append(p)
        live_ns.append(v)
        ratios.append(v / p)
    figures = {
        "bench": "config",
        "plain_ns": round(statistics.median(plain_ns), 1),
        "live_ns": round(statistics.median(live_ns), 1),
        "ratio_read": round(statistics.median(ratios), 3),
    }
    print(f"plain attribute {figures['plain_ns']} ns/read")
    print(f"live setting    {figures['live_ns']} ns/read")
    print(f"ratio_read {figures['ratio_read']} (bar: <= 1.05)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
