"""Benchmark: messages/s through a server-streaming RPC, raw grpc.aio vs a kitpy StreamServer.

stringsvc's ``Tokens`` (``rpc Tokens(TokensRequest) returns (stream
TokensResponse)``): each call's request is a string of ``WORDS`` words and its
stream is those words upper-cased, one ``TokensResponse`` each.  Each server
runs in its own process on 127.0.0.1:

* ``raw``   -- a hand-written ``StringServiceServicer`` on a bare
  ``grpc.aio.server``: ``Tokens`` is an ``async def`` generator that yields
  one ``TokensResponse`` per word of ``BasicStringService().tokens`` (the
  form grpc.aio's examples show; ``await context.write(...)`` from a
  coroutine, what kitpy's StreamServer does, measured the same within noise:
  1.01x the messages/s and 1.01x the CPU/msg over 4 short paired rounds).
  Like ``bench/grpc_server.py``'s raw servicer it refuses an empty string
  INVALID_ARGUMENT and sends the request id (the caller's or a new one) in
  the trailing metadata, as kitpy does;
* ``kitpy`` -- a servicer whose ``Tokens`` is a kitpy ``StreamServer(
  named_stream("tokens")(server_stream(service.tokens)), ...,
  kind="unary_stream")`` on a kitpy ``GrpcServer`` (health service, request
  guard), built here rather than taken from examples/stringsvc so that the
  bench measures the transport and the stream endpoint layers alone.

Both call the same service method; the difference is the transport.

One grpc.aio load client (this process) keeps ``CONCURRENCY`` server-streaming
calls in flight and counts the messages it receives (a call counts once its
stream has ended with all ``WORDS`` messages).  As in ``bench/grpc_server.py``:
every round starts a fresh raw and a fresh kitpy server process, warms both,
then loads them in alternating bursts, ``raw kitpy kitpy raw`` then ``kitpy
raw raw kitpy``; the servers' event-loop threads are pinned to the last CPU,
the client's to the others (grpc's own threads keep every CPU).

Per round it prints messages/s, streams/s, the p50 time of a whole stream, the
server process's CPU time per message (``/proc/PID/stat``, every thread), and
how busy the two event-loop threads were (CPU seconds per second: near 1.0 the
thread is the bottleneck; the client's should stay below the servers').  The
client's process needs about as much CPU per message as a server's (~22 us
each on a 2-CPU machine, where both CPUs are then busy), so a difference in
server cost shows in msgs/s diluted by about half: ``ratio_stream_cpu`` is the
server's side alone.

The last line is JSON: ``ratio_stream`` is the median of the per-round ratios
of kitpy msgs/s over raw msgs/s, ``ratio_stream_cpu`` the median of raw
CPU/msg over kitpy CPU/msg (both 1.0 = no overhead), ``ratio_ci95`` a
bootstrap 95% interval of ``ratio_stream``.  Target (issue 23):
``ratio_stream >= 0.90``.

Run: ``python bench/streaming.py [--rounds N] [--seconds S]`` (7 rounds of
1 s bursts by default, about 12 s a round).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: make `examples` importable

import grpc
import grpc.aio

from bench.grpc_server import ALL_CPUS, cpu_seconds, median_interval, pin_loop_thread
from bench.http_server import cpu_split
from examples.stringsvc.pb import stringsvc_pb2 as pb
from examples.stringsvc.pb import stringsvc_pb2_grpc as pb_grpc
from examples.stringsvc.service import BasicStringService
from kitpy import Context
from kitpy.endpoint.stream import named_stream, server_stream
from kitpy.transport.grpc import GrpcServer, StreamServer

ROUNDS = 7
BURST_SECONDS = 1.0
CYCLES = 2  # per round: CYCLES x 2 bursts per server
WARMUP_SECONDS = 1.0
CONCURRENCY = 16  # server-streaming calls in flight
WORDS = 100  # words per request = messages per call
SERVICE = "stringsvc.v1.StringService"
METHOD = f"/{SERVICE}/Tokens"
TEXT = " ".join(f"word{i}" for i in range(WORDS))
EXPECTED = [f"WORD{i}" for i in range(WORDS)]
CLK_TCK = os.sysconf("SC_CLK_TCK")
HEADER = "round  server    msgs/s  streams/s  p50 ms  cpu us/msg  server loop  client loop"


# -- the two servers (child processes) ----------------------------------------------


class RawServicer(pb_grpc.StringServiceServicer):
    """What a grpc.aio user writes by hand: the same streaming method, no kitpy."""

    def __init__(self) -> None:
        self.svc = BasicStringService()
        self.prefix, self.ids = os.urandom(6).hex() + "-", itertools.count(1)

    async def Tokens(
        self, request: pb.TokensRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.TokensResponse]:
        # the same work kitpy does: the trailers carry the request id (the caller's or new)
        given = dict(context.invocation_metadata() or ()).get("x-request-id")
        request_id = given if isinstance(given, str) else f"{self.prefix}{next(self.ids)}"
        context.set_trailing_metadata((("x-request-id", request_id),))
        if not request.s:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "empty string")
        # the service takes a Context first; a raw servicer has none of its own to give
        async for word in self.svc.tokens(Context(), request.s):
            yield pb.TokensResponse(v=word)


def decode_tokens_request(ctx: Context, message: pb.TokensRequest) -> str:
    return message.s


def encode_tokens_response(ctx: Context, word: str) -> pb.TokensResponse:
    return pb.TokensResponse(v=word)


class KitpyServicer(pb_grpc.StringServiceServicer):
    """The method as a kitpy StreamServer around the service's ``tokens`` (GrpcServer awaits it)."""

    Tokens: StreamServer[str, str, pb.TokensRequest, pb.TokensResponse]

    def __init__(self) -> None:
        svc = BasicStringService()
        self.Tokens = StreamServer(
            named_stream("tokens")(server_stream(svc.tokens)),
            decode_tokens_request,
            encode_tokens_response,
            kind="unary_stream",
            method=METHOD,
        )


async def start_server(kind: str) -> tuple[int, Callable[[], Awaitable[None]]]:
    """Start server ``kind`` (``raw`` or ``kitpy``) on 127.0.0.1; its port and its stop."""
    if kind == "raw":
        raw = grpc.aio.server(options=(("grpc.so_reuseport", 0),))
        pb_grpc.add_StringServiceServicer_to_server(RawServicer(), raw)  # type: ignore[no-untyped-call]
        port = raw.add_insecure_port("127.0.0.1:0")
        await raw.start()
        return port, lambda: raw.stop(1.0)
    if kind == "kitpy":
        kit = GrpcServer()
        kit.add_service(SERVICE, pb_grpc.add_StringServiceServicer_to_server, KitpyServicer())
        port = await kit.start("127.0.0.1:0")
        return port, lambda: kit.stop(grace=1.0)
    raise ValueError(f"unknown server {kind!r}: 'raw' or 'kitpy'")


async def serve(kind: str) -> None:
    """Serve ``kind`` (its port printed) until stdin closes."""
    port, stop = await start_server(kind)
    pin_loop_thread(cpu_split()[0])
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF
    await stop()


# -- the load client (this process) -------------------------------------------------

TokensCall = grpc.aio.UnaryStreamMultiCallable[pb.TokensRequest, pb.TokensResponse]


def tokens_call(channel: grpc.aio.Channel) -> TokensCall:
    """The Tokens method on ``channel``."""
    return channel.unary_stream(
        METHOD,
        request_serializer=pb.TokensRequest.SerializeToString,
        response_deserializer=pb.TokensResponse.FromString,
    )


async def load(call: TokensCall, seconds: float, *, concurrency: int = CONCURRENCY) -> list[float]:
    """Keep ``concurrency`` streams going for ``seconds``; each finished stream's duration.

    Every stream must bring all ``WORDS`` messages (else RuntimeError), so the
    messages received are ``len(result) * WORDS``.
    """
    durations: list[float] = []
    request = pb.TokensRequest(s=TEXT)
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            received = 0
            async for _ in call(request, timeout=10):
                received += 1
            if received != WORDS:
                raise RuntimeError(f"a stream brought {received} messages, not {WORDS}")
            durations.append(time.perf_counter() - start)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return durations


def main_thread_cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid``'s main thread (its event loop's)."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Target:
    """One server process (this file's ``--serve kind``) and a channel to it."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.port}")
        self.call = tokens_call(self.channel)

    async def check(self) -> None:
        """One stream, compared message by message with the expected words."""
        words = [reply.v async for reply in self.call(pb.TokensRequest(s=TEXT), timeout=10)]
        if words != EXPECTED:
            raise RuntimeError(f"{self.kind} server streamed {words[:3]}..., not {EXPECTED[:3]}...")

    async def burst(self, seconds: float) -> dict[str, Any]:
        """Load for ``seconds``; the figures of that time."""
        pid = self.proc.pid
        cpu0, loop0, client0 = cpu_seconds(pid), main_thread_cpu_seconds(pid), time.thread_time()
        start = time.perf_counter()
        durations = await load(self.call, seconds)
        elapsed = time.perf_counter() - start
        return {
            "streams": len(durations),
            "seconds": elapsed,
            "durations": durations,
            "cpu": cpu_seconds(pid) - cpu0,
            "server_loop": main_thread_cpu_seconds(pid) - loop0,
            "client_loop": time.thread_time() - client0,
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


def combine(bursts: list[dict[str, Any]]) -> dict[str, float]:
    """One server's bursts of a round as one measurement (rates over the bursts' time)."""
    streams = sum(b["streams"] for b in bursts)
    seconds = sum(b["seconds"] for b in bursts)
    durations = sorted(d for b in bursts for d in b["durations"])
    msgs = streams * WORDS
    return {
        "msgs_per_s": msgs / seconds,
        "streams_per_s": streams / seconds,
        "p50_ms": durations[len(durations) // 2] * 1e3,
        "cpu_us_per_msg": sum(b["cpu"] for b in bursts) / msgs * 1e6,
        "server_loop": sum(b["server_loop"] for b in bursts) / seconds,
        "client_loop": sum(b["client_loop"] for b in bursts) / seconds,
        "msgs": msgs,
        "seconds": seconds,
    }


async def measure_round(burst_seconds: float) -> dict[str, dict[str, float]]:
    """One round: fresh raw and kitpy servers, warmed, then alternating bursts on each."""
    pin_loop_thread(ALL_CPUS)  # so the servers (and threads grpc starts now) get every CPU
    targets = {kind: Target(kind) for kind in ("raw", "kitpy")}
    pin_loop_thread(cpu_split()[1])
    try:
        for target in targets.values():
            await target.check()
            await target.burst(WARMUP_SECONDS)
        bursts: dict[str, list[dict[str, Any]]] = {"raw": [], "kitpy": []}
        for cycle in range(CYCLES):
            order = ("raw", "kitpy") if cycle % 2 == 0 else ("kitpy", "raw")
            for kind in (*order, *reversed(order)):
                bursts[kind].append(await targets[kind].burst(burst_seconds))
        return {kind: combine(bursts[kind]) for kind in bursts}
    finally:
        for target in targets.values():
            await target.close()


async def main(rounds: int = ROUNDS, burst_seconds: float = BURST_SECONDS) -> None:
    results: dict[str, list[dict[str, float]]] = {"raw": [], "kitpy": []}
    ratios: list[float] = []
    cpu_ratios: list[float] = []
    print(f"{WORDS} messages per stream, {CONCURRENCY} streams in flight")
    print(HEADER)
    for i in range(rounds):
        measured = await measure_round(burst_seconds)
        for kind in ("raw", "kitpy"):
            m = measured[kind]
            results[kind].append(m)
            print(
                f"{i + 1:>5}  {kind:>6}  {m['msgs_per_s']:>8.0f}  {m['streams_per_s']:>9.0f}  "
                f"{m['p50_ms']:>6.2f}  {m['cpu_us_per_msg']:>10.2f}  "
                f"{m['server_loop']:>11.2f}  {m['client_loop']:>11.2f}"
            )
        ratios.append(measured["kitpy"]["msgs_per_s"] / measured["raw"]["msgs_per_s"])
        cpu_ratios.append(measured["raw"]["cpu_us_per_msg"] / measured["kitpy"]["cpu_us_per_msg"])

    def med(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in results[kind])

    figures: dict[str, Any] = {
        "bench": "streaming",
        "words": WORDS,
        "concurrency": CONCURRENCY,
        "ratio_stream": round(statistics.median(ratios), 3),
        "ratio_stream_cpu": round(statistics.median(cpu_ratios), 3),
        "ratio_sd": round(statistics.stdev(ratios), 3),
        "ratio_ci95": [round(x, 3) for x in median_interval(ratios)],
        "rounds": rounds,
        "burst_seconds": burst_seconds,
        "kitpy_msgs_per_s": round(med("kitpy", "msgs_per_s")),
        "raw_msgs_per_s": round(med("raw", "msgs_per_s")),
        "kitpy_cpu_us_per_msg": round(med("kitpy", "cpu_us_per_msg"), 2),
        "raw_cpu_us_per_msg": round(med("raw", "cpu_us_per_msg"), 2),
        "kitpy_p50_ms": round(med("kitpy", "p50_ms"), 2),
        "raw_p50_ms": round(med("raw", "p50_ms"), 2),
    }
    low, high = figures["ratio_ci95"]
    print(
        f"median ratio kitpy/raw: msgs/s {figures['ratio_stream']:.3f} "
        f"(95% interval {low:.3f}-{high:.3f}, {rounds} rounds; target >= 0.90), "
        f"cpu per msg (raw/kitpy) {figures['ratio_stream_cpu']:.3f}"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", choices=["raw", "kitpy"], help=argparse.SUPPRESS)
    parser.add_argument(
        "--rounds", type=int, default=ROUNDS, help=f"paired rounds (default {ROUNDS}; at least 2)"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=BURST_SECONDS,
        help=f"seconds per burst (default {BURST_SECONDS}; {2 * CYCLES} bursts per server a round)",
    )
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error("--rounds must be at least 2 (the spread needs two rounds)")
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    asyncio.run(serve(args.serve) if args.serve else main(args.rounds, args.seconds))
