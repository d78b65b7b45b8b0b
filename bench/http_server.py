"""Benchmark: a kitpy HTTP ``Server`` vs a raw aiohttp handler doing the same work.

Both decode ``{"s": ...}`` into the same frozen dataclass with msgspec, upper-case
it (400 for an empty string) and encode ``{"v": ...}``; the kitpy variant also
does everything a kitpy Server does per request (Context with method, path,
route, headers, peer, request id and operation; deadline header; Content-Type
and size checks; strict unknown-field check; ``X-Request-Id`` on the response).
Each variant is an app factory served by its own process on 127.0.0.1
(``--serve NAME``): ``raw`` through aiohttp's own listener (``AppRunner`` +
``TCPSite``), the kitpy variants through :func:`kitpy.transport.http.start_app`
(its connection cap, arrival times and JSON parse errors included), all
loaded by the same generator -- ``wrk`` (``/usr/bin/wrk``, a Lua script sets
the POST body) or, if it is missing, an
aiohttp client process with ``CONNECTIONS`` connections.
Every round starts a fresh server process per variant (warmed up before it is
measured) and rounds alternate the order of the variants; servers are pinned
to one CPU and the generator to the others.  The reported ratio is the median
of the per-round throughput ratios.

Adding a variant: put a factory ``() -> web.Application`` in ``VARIANTS`` (or
pass ``--variant NAME=module:function`` on the command line) and a
``ratio_<name>`` entry in ``RATIOS``, e.g. ``RATIOS["ratio_full_stack"] =
("full_stack", "raw")``.

Run: ``python bench/http_server.py`` (about 100 s).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import itertools
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import ClientSession, TCPConnector, web

from kitpy import Context, InvalidArgument
from kitpy.transport.http import Server, decode_json, encode_json, start_app

ROUNDS = 7
SECONDS = 3.0
WARMUP_SECONDS = 1.0
CONNECTIONS = 16
BODY = b'{"s": "hello, kitpy benchmark"}'
PATH = "/uppercase"
WRK = "/usr/bin/wrk"


# -- the work both variants do ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UppercaseRequest:
    s: str


@dataclass(frozen=True, slots=True)
class UppercaseResponse:
    v: str


def make_raw_app() -> web.Application:
    """A raw aiohttp handler: msgspec decode, upper-case, msgspec encode, request id back."""
    decode = msgspec.json.Decoder(UppercaseRequest).decode
    encode = msgspec.json.Encoder().encode

    prefix, ids = os.urandom(6).hex() + "-", itertools.count(1)

    async def uppercase(request: web.Request) -> web.Response:
        # the same work kitpy does: every response carries the request id (the caller's or new)
        request_id = request.headers.get("X-Request-Id") or f"{prefix}{next(ids)}"
        headers = {"X-Request-Id": request_id}
        try:
            req = decode(await request.read())
        except msgspec.MsgspecError as exc:
            return web.json_response({"error": str(exc)}, status=400, headers=headers)
        if not req.s:
            return web.json_response({"error": "empty string"}, status=400, headers=headers)
        return web.Response(
            body=encode(UppercaseResponse(v=req.s.upper())),
            content_type="application/json",
            headers=headers,
        )

    app = web.Application()
    app.router.add_post(PATH, uppercase)
    return app


def make_kitpy_app() -> web.Application:
    """The same work as a kitpy endpoint behind a kitpy Server."""

    async def uppercase(ctx: Context, request: UppercaseRequest) -> UppercaseResponse:
        if not request.s:
            raise InvalidArgument("empty string")
        return UppercaseResponse(v=request.s.upper())

    app = web.Application()
    app.router.add_post(PATH, Server(uppercase, decode_json(UppercaseRequest), encode_json))
    return app


VARIANTS: dict[str, Callable[[], web.Application] | str] = {
    "raw": make_raw_app,
    "kitpy": make_kitpy_app,
    # the observability stack (tracing at 10% head sampling, logging, metrics) around the same work
    "full_stack": "bench.middleware_overhead:make_sampled_full_stack_app",
}
"""Name -> app factory, or ``"module:function"`` naming one (imported in the server process)."""

RAW_VARIANTS = frozenset({"raw"})
"""Variants served by aiohttp's own listener; the rest by :func:`kitpy.transport.http.start_app`."""

RATIOS: dict[str, tuple[str, str]] = {
    "ratio_bare": ("kitpy", "raw"),
    "ratio_full_stack": ("full_stack", "raw"),
}
"""JSON key -> (variant, baseline): the throughput ratio variant/baseline."""


# -- server process -------------------------------------------------------------------------


def load_factory(spec: Callable[[], web.Application] | str) -> Callable[[], web.Application]:
    if not isinstance(spec, str):
        return spec
    module, _, attr = spec.partition(":")
    factory: Callable[[], web.Application] = getattr(importlib.import_module(module), attr)
    return factory


def cpu_split() -> tuple[set[int], set[int]]:
    """(server CPUs, load generator CPUs): the last CPU serves, the others load.

    Pinning keeps the scheduler from putting a server and the generator on one
    CPU for part of a run, which otherwise swings a round's ratio by 10-20%.
    Both are empty (no pinning) on a one-CPU machine or where affinity is unknown.
    """
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set(), set()
    if len(cpus) < 2:
        return set(), set()
    return {cpus[-1]}, set(cpus[:-1])


def pin(cpus: set[int]) -> None:
    """Keep this process on ``cpus`` (no-op when empty)."""
    if cpus:
        os.sched_setaffinity(0, cpus)


async def serve_app(app: web.Application) -> None:
    """Serve ``app`` with aiohttp's own listener on 127.0.0.1 (port printed) until stdin closes."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF
    await runner.cleanup()


async def serve(name: str) -> None:
    """Serve variant ``name`` on 127.0.0.1 (free port, printed) until stdin closes."""
    pin(cpu_split()[0])
    app = load_factory(VARIANTS[name])()
    loop = asyncio.get_running_loop()
    if name in RAW_VARIANTS:  # aiohttp's own listener
        await serve_app(app)
    else:  # kitpy's: start_app, with its connection cap and handler
        running = await start_app(app, host="127.0.0.1", port=0, access_log=None)
        print(running.addresses[0][1], flush=True)
        await loop.run_in_executor(None, sys.stdin.read)
        await running.stop()


def start_server(name: str, extra: list[str]) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", name, *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.strip().isdigit():
        proc.kill()
        raise RuntimeError(f"server {name} did not start: {line!r}")
    return proc, int(line)


# -- load generators --------------------------------------------------------------------


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float = float("nan")  # server CPU time per request
    requests: int = 0  # requests completed (wrk's count, or the Python generator's)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (Linux /proc), or NaN elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _latency_ms(text: str, pct: str) -> float:
    match = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    return float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")


def write_wrk_script(path: Path, *, token: str | None = None) -> Path:
    """Write the wrk Lua script that POSTs :data:`BODY` as JSON (with a bearer ``token``)."""
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = {json.dumps(BODY.decode())}",
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    if token is not None:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {token}"')
    path.write_text("\n".join(lines) + "\n")
    return path


def run_wrk(port: int, seconds: float, script: Path) -> Result:
    out = subprocess.run(
        [WRK, "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--latency",
         "-s", str(script), f"http://127.0.0.1:{port}{PATH}"],
        capture_output=True, text=True, check=True, timeout=seconds + 30,
        preexec_fn=lambda: pin(cpu_split()[1]),
    ).stdout  # fmt: skip
    return parse_wrk(out)


def parse_wrk(out: str) -> Result:
    """req/s, p50, p99 and the request count of wrk's output; RuntimeError if any was not 2xx."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    requests = re.search(r"^\s*(\d+) requests in", out, re.MULTILINE)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if rps is None or requests is None or non2xx is not None:
        raise RuntimeError(f"wrk failed or saw errors:\n{out}")
    return Result(
        float(rps.group(1)),
        _latency_ms(out, "50"),
        _latency_ms(out, "99"),
        requests=int(requests.group(1)),
    )


async def _python_load(port: int, seconds: float, extra_headers: dict[str, str]) -> Result:
    url = f"http://127.0.0.1:{port}{PATH}"
    headers = {"Content-Type": "application/json", **extra_headers}
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def worker(session: ClientSession) -> None:
        while time.perf_counter() < stop:
            start = time.perf_counter()
            async with session.post(url, data=BODY, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"status {resp.status}")
            latencies.append(time.perf_counter() - start)

    async with ClientSession(connector=TCPConnector(limit=CONNECTIONS)) as session:
        began = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(CONNECTIONS)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return Result(
        len(latencies) / elapsed,
        latencies[len(latencies) // 2] * 1000,
        latencies[int(len(latencies) * 0.99)] * 1000,
        requests=len(latencies),
    )


def run_python_load(port: int, seconds: float, headers: dict[str, str] | None = None) -> Result:
    """The fallback generator, in its own process so it does not share the parent's loop.

    ``headers`` are sent with every request (e.g. ``Authorization``).
    """
    extra = [f"--header={name}:{value}" for name, value in (headers or {}).items()]
    out = subprocess.run(
        [sys.executable, __file__, "--load", str(port), "--seconds", str(seconds), *extra],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
        preexec_fn=lambda: pin(cpu_split()[1]),
    ).stdout  # fmt: skip
    return Result(**json.loads(out))


# -- driver -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--load", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--header", action="append", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=SECONDS, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument(
        "--variant", action="append", default=[], metavar="NAME=module:function",
        help="add a variant served by an app factory (importable from the repository root)",
    )  # fmt: skip
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    for spec in args.variant:
        name, _, factory = spec.partition("=")
        VARIANTS[name] = factory
    if args.serve:
        asyncio.run(serve(args.serve))
        return
    if args.load:
        headers = dict(h.partition(":")[::2] for h in args.header)
        print(json.dumps(vars(asyncio.run(_python_load(args.load, args.seconds, headers)))))
        return

    extra = [f"--variant={v}" for v in args.variant]
    names = list(VARIANTS)
    with tempfile.TemporaryDirectory() as tmp:
        script = write_wrk_script(Path(tmp) / "post.lua")
        use_wrk = shutil.which(WRK) is not None

        servers: dict[str, tuple[subprocess.Popen[str], int]] = {}

        def load(name: str, seconds: float) -> Result:
            proc, port = servers[name]
            cpu_before = cpu_seconds(proc.pid)
            result = run_wrk(port, seconds, script) if use_wrk else run_python_load(port, seconds)
            cpu = cpu_seconds(proc.pid) - cpu_before
            result.cpu_us = cpu / (result.rps * seconds) * 1e6
            return result

        def stop(proc: subprocess.Popen[str]) -> None:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()

        # A fresh server process per variant per round: two processes serving the
        # same app differ by up to ~4% (memory layout, hash seeds), so a process
        # kept for the whole run would bias every round of its variant the same way.
        results: dict[str, list[Result]] = {name: [] for name in names}
        for round_no in range(args.rounds):
            order = names if round_no % 2 == 0 else names[::-1]
            for name in order:
                servers[name] = start_server(name, extra)
                try:
                    load(name, WARMUP_SECONDS)
                    results[name].append(load(name, args.seconds))
                finally:
                    stop(servers.pop(name)[0])

    generator = "wrk" if use_wrk else "aiohttp client"
    print(f"generator: {generator}, {CONNECTIONS} connections, {args.rounds} rounds of "
          f"{args.seconds:g}s, cpu count {os.cpu_count()}, "
          f"servers on CPUs {sorted(cpu_split()[0]) or 'any'}")  # fmt: skip
    print(f"{'variant':>12}  {'req/s':>9}  {'p50 ms':>7}  {'p99 ms':>7}  {'server CPU us/req':>17}")
    figures: dict[str, Any] = {"bench": "http_server", "generator": generator}
    for name in names:
        rs = results[name]
        rps = statistics.median(r.rps for r in rs)
        p50 = statistics.median(r.p50_ms for r in rs)
        p99 = statistics.median(r.p99_ms for r in rs)
        cpu = statistics.median(r.cpu_us for r in rs)
        print(f"{name:>12}  {rps:>9.0f}  {p50:>7.2f}  {p99:>7.2f}  {cpu:>17.1f}")
        figures[f"{name}_cpu_us_per_req"] = round(cpu, 1)
        figures[f"{name}_rps"] = round(rps)
        figures[f"{name}_p50_ms"] = round(p50, 3)
        figures[f"{name}_p99_ms"] = round(p99, 3)
    for key, (variant, baseline) in RATIOS.items():
        if variant in results and baseline in results:
            per_round = [
                v.rps / b.rps for v, b in zip(results[variant], results[baseline], strict=True)
            ]
            ratio = statistics.median(per_round)
            print(f"{key}: {ratio:.3f}  (per round: {', '.join(f'{r:.3f}' for r in per_round)})")
            figures[key] = round(ratio, 3)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
