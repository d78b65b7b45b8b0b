"""Benchmark: stringsvc's Uppercase RPC on a raw grpc.aio servicer vs a kitpy gRPC Server.

Each server runs in its own process on 127.0.0.1:

* ``raw``   -- a hand-written ``StringServiceServicer`` on a bare ``grpc.aio.server``;
* ``kitpy`` -- the example's ``StringServicer`` (kitpy ``Server`` per method, the
  service's endpoints) on a ``GrpcServer`` (health service, request guard).

One grpc.aio load client (this process) keeps ``CONCURRENCY`` calls in flight.
Every round starts a fresh raw and a fresh kitpy server process (two processes
of the same server differ by a few percent), warms both, then loads them in
short alternating bursts, ``raw kitpy kitpy raw`` then ``kitpy raw raw kitpy``,
so that both see the same machine: drift during the round cancels out.

Each server is pinned, every thread of it, to the last CPU (it pins itself
before grpc starts a thread, and grpc's threads inherit that); the client's
event loop thread to the others.  Pinning the servers' loop threads alone left
grpc's own threads free to land on the client's CPU, and a round's ratio
spread by ~0.07 (sd); with every server thread pinned it spreads by ~0.02
(10 paired rounds, 2026-12-05), and both servers serve ~15 % more calls.  The
bench still runs many rounds and prints ``ratio_sd``.

It reports calls/s, p50/p99 latency and the server process's CPU time per call,
and the median of the per-round ratios.  The last line is JSON; ``ratio_bare``
is kitpy calls/s over raw calls/s, ``ratio_cpu`` raw CPU/call over kitpy
CPU/call (both 1.0 = no overhead), ``ratio_ci95`` a bootstrap 95% interval of
``ratio_bare``.  Run: ``python bench/grpc_server.py [--rounds N]`` (11 by default;
40 rounds take ~8 minutes and narrow the interval to about +-0.02).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: make `examples` importable

import grpc
import grpc.aio

from bench.http_server import cpu_split
from examples.stringsvc.pb import stringsvc_pb2 as pb
from examples.stringsvc.pb import stringsvc_pb2_grpc as pb_grpc
from kitpy import Context

ROUNDS = 11
ROUND_SECONDS = 2.0  # the report's rounds (bench/report.py)
BURST_SECONDS = 1.0
CYCLES = 2  # per round: CYCLES x 2 bursts per server
WARMUP_SECONDS = 1.0
CONCURRENCY = 32
CLK_TCK = os.sysconf("SC_CLK_TCK")
HEADER = "round  server   calls/s   p50 ms   p99 ms  cpu us/call"


# -- the two servers (child processes) ----------------------------------------------


class RawServicer(pb_grpc.StringServiceServicer):
    """What a grpc.aio user writes by hand: the same service, no kitpy."""

    def __init__(self) -> None:
        from examples.stringsvc.service import BasicStringService

        self.svc = BasicStringService()
        self.prefix, self.ids = os.urandom(6).hex() + "-", itertools.count(1)

    async def Uppercase(
        self, request: pb.UppercaseRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.UppercaseResponse:
        # the same work kitpy does: every response carries the request id (the caller's or new)
        given = dict(context.invocation_metadata() or ()).get("x-request-id")
        request_id = given if isinstance(given, str) else f"{self.prefix}{next(self.ids)}"
        context.set_trailing_metadata((("x-request-id", request_id),))
        if not request.s:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "empty string")
        # the service takes a Context first; a raw servicer has none of its own to give
        return pb.UppercaseResponse(v=await self.svc.uppercase(Context(), request.s))


async def serve_servicer(servicer: pb_grpc.StringServiceServicer) -> None:
    """Serve ``servicer`` on a bare grpc.aio server (127.0.0.1, port printed) until EOF on stdin."""
    server = grpc.aio.server(options=(("grpc.so_reuseport", 0),))
    pb_grpc.add_StringServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF
    await server.stop(1.0)


async def serve(kind: str) -> None:
    pin_loop_thread(cpu_split()[0])  # first: the threads grpc starts from here inherit it
    if kind == "raw":
        await serve_servicer(RawServicer())
        return
    from examples.stringsvc.endpoints import make_endpoints
    from examples.stringsvc.service import BasicStringService
    from examples.stringsvc.transport_grpc import start_grpc_server

    _, port = await start_grpc_server(make_endpoints(BasicStringService()), port=0)
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF


ALL_CPUS: set[int] = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
"""The CPUs this process may use, read before any thread of it is pinned."""


def pin_loop_thread(cpus: set[int]) -> None:
    """Keep the calling thread (the event loop's) on ``cpus``; no-op when empty.

    On Linux, affinity belongs to a thread and ``sched_setaffinity(0, ...)``
    sets the caller's alone: threads already started keep theirs, threads it
    starts afterwards (grpc's, when a server or channel is made) inherit it.
    """
    if cpus:
        os.sched_setaffinity(0, cpus)


# -- the load client (this process) -------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


async def load(
    call: grpc.aio.UnaryUnaryMultiCallable[pb.UppercaseRequest, pb.UppercaseResponse],
    seconds: float,
    *,
    metadata: tuple[tuple[str, str], ...] | None = None,
) -> list[float]:
    latencies: list[float] = []
    request = pb.UppercaseRequest(s="hello kitpy")
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            reply = await call(request, timeout=10, metadata=metadata)
            latencies.append(time.perf_counter() - start)
            assert reply.v == "HELLO KITPY"

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return latencies


class Target:
    """One server process and a channel to it.

    ``command`` starts another server that prints its port and stops when stdin
    closes (default: this file's ``--serve kind``); ``metadata`` is sent with every call.
    """

    def __init__(
        self,
        kind: str,
        *,
        command: list[str] | None = None,
        metadata: tuple[tuple[str, str], ...] | None = None,
    ) -> None:
        self.kind = kind
        self.metadata = metadata
        self.proc = subprocess.Popen(
            command or [sys.executable, __file__, "--serve", kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.port}")
        self.call: grpc.aio.UnaryUnaryMultiCallable[pb.UppercaseRequest, pb.UppercaseResponse] = (
            self.channel.unary_unary(
                "/stringsvc.v1.StringService/Uppercase",
                request_serializer=pb.UppercaseRequest.SerializeToString,
                response_deserializer=pb.UppercaseResponse.FromString,
            )
        )

    async def round(self, seconds: float, *, keep: list[float] | None = None) -> dict[str, float]:
        """Load for ``seconds``; the figures of that time (latencies added to ``keep``)."""
        cpu0 = cpu_seconds(self.proc.pid)
        start = time.perf_counter()
        latencies = await load(self.call, seconds, metadata=self.metadata)
        elapsed = time.perf_counter() - start
        cpu = cpu_seconds(self.proc.pid) - cpu0
        latencies.sort()
        if keep is not None:
            keep.extend(latencies)
        return {
            "rps": len(latencies) / elapsed,
            "calls": len(latencies),
            "seconds": elapsed,
            "p50_ms": latencies[len(latencies) // 2] * 1e3,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
            "cpu_us": cpu / len(latencies) * 1e6,
        }

    async def close(self) -> None:
        await self.channel.close()
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def measure_round() -> dict[str, dict[str, float]]:
    """One round: fresh raw and kitpy servers, warmed, then alternating bursts on each."""
    pin_loop_thread(ALL_CPUS)  # so the servers (and threads grpc starts now) get every CPU
    targets = {kind: Target(kind) for kind in ("raw", "kitpy")}
    pin_loop_thread(cpu_split()[1])
    try:
        for target in targets.values():
            await target.round(WARMUP_SECONDS)
        bursts: dict[str, list[dict[str, float]]] = {"raw": [], "kitpy": []}
        latencies: dict[str, list[float]] = {"raw": [], "kitpy": []}
        for cycle in range(CYCLES):
            order = ("raw", "kitpy") if cycle % 2 == 0 else ("kitpy", "raw")
            for kind in (*order, *reversed(order)):
                m = await targets[kind].round(BURST_SECONDS, keep=latencies[kind])
                bursts[kind].append(m)
        return {kind: combine(bursts[kind], latencies[kind]) for kind in bursts}
    finally:
        for target in targets.values():
            await target.close()


def combine(bursts: list[dict[str, float]], latencies: list[float]) -> dict[str, float]:
    """One server's bursts of a round as one measurement (calls/s over the bursts' time)."""
    calls = sum(b["calls"] for b in bursts)
    seconds = sum(b["seconds"] for b in bursts)
    latencies.sort()
    return {
        "rps": calls / seconds,
        "p50_ms": latencies[len(latencies) // 2] * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
        "cpu_us": sum(b["cpu_us"] * b["calls"] for b in bursts) / calls,
        "calls": calls,
        "seconds": seconds,
    }


def median_interval(values: list[float], *, draws: int = 2000) -> tuple[float, float]:
    """A bootstrap 95% interval of the median of ``values`` (resampled with a fixed seed)."""
    rng = random.Random(1)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(draws))
    return medians[int(draws * 0.025)], medians[int(draws * 0.975) - 1]


async def main(rounds: int = ROUNDS) -> None:
    results: dict[str, list[dict[str, float]]] = {"raw": [], "kitpy": []}
    ratios: list[float] = []
    cpu_ratios: list[float] = []
    print(HEADER)
    for i in range(rounds):
        measured = await measure_round()
        for kind in ("raw", "kitpy"):
            m = measured[kind]
            results[kind].append(m)
            print(
                f"{i + 1:>5}  {kind:>6}  {m['rps']:>8.0f}  {m['p50_ms']:>7.2f}  "
                f"{m['p99_ms']:>7.2f}  {m['cpu_us']:>11.0f}"
            )
        ratios.append(measured["kitpy"]["rps"] / measured["raw"]["rps"])
        cpu_ratios.append(measured["raw"]["cpu_us"] / measured["kitpy"]["cpu_us"])

    def med(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in results[kind])

    figures: dict[str, Any] = {
        "bench": "grpc_server",
        "concurrency": CONCURRENCY,
        "ratio_bare": round(statistics.median(ratios), 3),
        "ratio_cpu": round(statistics.median(cpu_ratios), 3),
        "ratio_sd": round(statistics.stdev(ratios), 3),
        "ratio_ci95": [round(x, 3) for x in median_interval(ratios)],
        "rounds": rounds,
        "kitpy_rps": round(med("kitpy", "rps")),
        "raw_rps": round(med("raw", "rps")),
        "kitpy_p50_ms": round(med("kitpy", "p50_ms"), 3),
        "raw_p50_ms": round(med("raw", "p50_ms"), 3),
        "kitpy_p99_ms": round(med("kitpy", "p99_ms"), 3),
        "raw_p99_ms": round(med("raw", "p99_ms"), 3),
        "kitpy_cpu_us_per_call": round(med("kitpy", "cpu_us"), 1),
        "raw_cpu_us_per_call": round(med("raw", "cpu_us"), 1),
    }
    low, high = figures["ratio_ci95"]
    print(
        f"median ratio kitpy/raw: throughput {figures['ratio_bare']:.3f} "
        f"(95% interval {low:.3f}-{high:.3f}, {rounds} rounds), "
        f"cpu per call (raw/kitpy) {figures['ratio_cpu']:.3f}"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", choices=["raw", "kitpy"], help=argparse.SUPPRESS)
    parser.add_argument(
        "--rounds", type=int, default=ROUNDS, help=f"paired rounds (default {ROUNDS}; at least 2)"
    )
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error("--rounds must be at least 2 (the spread needs two rounds)")
    asyncio.run(serve(args.serve) if args.serve else main(args.rounds))
