"""Benchmark: kitpy's bare gRPC server now against an earlier checkout, raw grpc.aio alongside.

A change worth one or two points of ``grpc_server.py``'s ratio is lost in the
spread between two runs (0.91-0.95 for the same code).  Measured in the *same*
rounds, the difference between two versions of kitpy is steadier.  Give the
earlier version as a directory, e.g. a git worktree::

    git worktree add /tmp/kitpy-base HEAD~1
    python bench/grpc_ab.py --base /tmp/kitpy-base [--rounds 8]

Each round starts three fresh server processes: ``raw`` and ``kitpy`` from this
checkout (``grpc_server.py --serve``) and ``base`` from ``--base``'s own
``bench/grpc_server.py``, which puts its checkout first on ``sys.path`` and so
serves that kitpy and that example.  After a warm-up, each process is loaded in
1 s bursts in ``report.py``'s order (round the variants forward and back), with
``grpc_server.py``'s load client and the same CPU pinning.

It prints each round's calls/s and server CPU per call, then the medians of
the per-round ratios to raw.  The last line is JSON: ``ratio_kitpy`` and
``ratio_base`` (calls/s over raw's), ``cpu_ratio_kitpy`` and ``cpu_ratio_base``
(raw's CPU per call over theirs), and ``gain`` (the median per-round
``kitpy / base`` by calls/s; above 1.0: this checkout serves more).  Not part of
``make bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: make `bench` importable

from bench import grpc_server
from bench.http_server import cpu_split
from bench.report import bursts

ROUNDS = 8
SECONDS = 4.0  # per variant and round, in 1 s bursts (bench/report.py's)
Figures = dict[str, float]


def commands(base: Path) -> dict[str, list[str]]:
    """variant -> the command serving it (each prints its port and stops when stdin closes)."""
    here = str(ROOT / "bench" / "grpc_server.py")
    there = str(base / "bench" / "grpc_server.py")
    return {
        "raw": [sys.executable, here, "--serve", "raw"],
        "kitpy": [sys.executable, here, "--serve", "kitpy"],
        "base": [sys.executable, there, "--serve", "kitpy"],
    }


async def measure_round(variants: dict[str, list[str]], round_no: int) -> dict[str, Figures]:
    """Fresh servers, warmed, then :data:`SECONDS` each in bursts; their combined figures."""
    grpc_server.pin_loop_thread(grpc_server.ALL_CPUS)  # the servers start unpinned, then pin
    targets: dict[str, grpc_server.Target] = {}
    try:
        for name, command in variants.items():
            targets[name] = grpc_server.Target(name, command=command)
        grpc_server.pin_loop_thread(cpu_split()[1])
        for target in targets.values():
            await target.round(grpc_server.WARMUP_SECONDS)
        parts: dict[str, list[Figures]] = {name: [] for name in targets}
        latencies: dict[str, list[float]] = {name: [] for name in targets}
        for name, seconds in bursts(list(targets), round_no, SECONDS):  # as the report goes
            parts[name].append(await targets[name].round(seconds, keep=latencies[name]))
        return {name: grpc_server.combine(parts[name], latencies[name]) for name in targets}
    finally:
        grpc_server.pin_loop_thread(grpc_server.ALL_CPUS)
        for target in targets.values():
            await target.close()


async def main(base: Path, rounds: int) -> None:
    variants = commands(base)
    ratios: dict[str, list[float]] = {"kitpy": [], "base": []}
    cpu_ratios: dict[str, list[float]] = {"kitpy": [], "base": []}
    gains: list[float] = []
    print("round  " + "  ".join(f"{name:>16}" for name in variants) + "   (calls/s, cpu us/call)")
    for round_no in range(rounds):
        measured = await measure_round(variants, round_no)
        cells = (f"{m['rps']:>7.0f} {m['cpu_us']:>6.1f}us" for m in measured.values())
        print(f"{round_no + 1:>5}  " + "  ".join(f"{cell:>16}" for cell in cells), flush=True)
        raw = measured["raw"]
        for name in ratios:
            ratios[name].append(measured[name]["rps"] / raw["rps"])
            cpu_ratios[name].append(raw["cpu_us"] / measured[name]["cpu_us"])
        gains.append(measured["kitpy"]["rps"] / measured["base"]["rps"])
    result: dict[str, object] = {"bench": "grpc_ab", "base": str(base), "rounds": rounds}
    for name in ratios:
        result[f"ratio_{name}"] = round(statistics.median(ratios[name]), 3)
        result[f"cpu_ratio_{name}"] = round(statistics.median(cpu_ratios[name]), 3)
    result["gain"] = round(statistics.median(gains), 3)
    print(
        f"of raw: kitpy {result['ratio_kitpy']} (CPU {result['cpu_ratio_kitpy']}), "
        f"base {result['ratio_base']} (CPU {result['cpu_ratio_base']}); "
        f"kitpy/base {result['gain']}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--base", type=Path, required=True, help="an earlier checkout (e.g. a git worktree)"
    )
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"rounds (default {ROUNDS})")
    args = parser.parse_args()
    base_server = args.base / "bench" / "grpc_server.py"
    if not base_server.is_file():
        parser.error(f"--base {args.base} has no bench/grpc_server.py")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    asyncio.run(main(args.base.resolve(), args.rounds))
