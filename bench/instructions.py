"""Instructions per request: a noise-free comparison of kitpy's servers with raw ones.

The req/s and CPU ratios of ``bench/report.py`` move by 5-10 % from round to
round on a small shared machine, so a change worth 1-2 % cannot be seen in
them without many rounds.  The number of instructions a server executes per
request hardly moves (about 1 % between runs).  This script serves each
variant of the report (the same commands) under valgrind's callgrind tool,
loads it -- HTTP with wrk, gRPC with ``bench/grpc_server.py``'s client --
counts the instructions the server process executed (every thread: the event
loop, grpc's own threads, the span exporter) while the measured load ran, and
divides by the requests served::

    python bench/instructions.py                          # HTTP: raw, kitpy, full_stack
    python bench/instructions.py --transport grpc --variants kitpy,full_stack_0
    python bench/instructions.py --transport gateway      # bench/gateway.py's rows

It prints a line per variant and a JSON line whose ``ir_ratio_<variant>`` keys
are raw's instructions per request over the variant's: the same direction as
the report's ratios (1.0 = as little work as raw, 0.5 = twice the work).
``--transport gateway`` counts ``bench/gateway.py``'s rows instead (the upstreams
run outside valgrind, as there): ``ir_ratio_proxy`` is ``raw_proxy`` over
``gateway``, ``ir_ratio_transcode`` ``raw_transcode`` over ``gateway_connect``.

What an instruction count does not see: time spent waiting for memory
(cache misses), branch mispredictions, and the kernel's side of system calls.
A variant that executes a few percent more instructions can take several
percent more CPU time; the report's figures stay the ones the targets are
set on.  Use this to tell whether a change removed work, then the report to
see what it is worth.  Needs ``valgrind`` (Debian package ``valgrind``) and,
for HTTP, ``wrk``; under valgrind a server runs about 50 times slower, so a
run of 10 s serves one to a few thousand requests.
"""

from __future__ import annotations

import os
import sys

_BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
# bench/jwt.py must not shadow pyjwt; the repository root must be importable.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _BENCH_DIR]
sys.path.insert(0, os.path.dirname(_BENCH_DIR))

import argparse
import asyncio
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import gateway, grpc_server, http_server, report
from bench.fullstack import bench_token

__all__ = [
    "Count",
    "count_grpc",
    "count_http",
    "main",
    "measure",
    "measure_gateway",
    "parse_totals",
]

VALGRIND = "valgrind"
CALLGRIND_CONTROL = "callgrind_control"
DEFAULT_VARIANTS = ("raw", "kitpy", "full_stack")
GATEWAY_RATIOS = {
    "proxy": ("raw_proxy", "gateway"),
    "transcode": ("raw_transcode", "gateway_connect"),
}
"""``ir_ratio_<name>`` -> (raw row, gateway row) of ``--transport gateway``."""
START_TIMEOUT = 300.0  # seconds a server may take to listen under valgrind (grpc imports slowly)

Load = Callable[[int, float], int]
"""Loads the server on a port for some seconds; returns the requests it served."""


@dataclass(frozen=True)
class Count:
    """What one measured load cost the server: its instructions and the requests it served."""

    requests: int
    instructions: int

    @property
    def per_request(self) -> float:
        return self.instructions / self.requests


def parse_totals(text: str) -> int:
    """The instruction total (``Ir``) of a callgrind output file's text.

    Example::

        parse_totals("events: Ir\\nsummary: 1200\\n")   # 1200
    """
    events: list[str] = []
    for line in text.splitlines():
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith(("totals:", "summary:")):
            if "Ir" not in events:
                raise ValueError("the callgrind output counts no Ir event")
            return int(line.split()[1:][events.index("Ir")])
    raise ValueError("no totals: or summary: line in the callgrind output")


def _control(option: str, pid: int) -> None:
    """Tell the callgrind of process ``pid`` to do ``option`` (``--instr=on``, ``--dump``)."""
    subprocess.run([CALLGRIND_CONTROL, option, str(pid)], check=True, capture_output=True,
                   timeout=120)  # fmt: skip


def _under_callgrind(command: Sequence[str], out_dir: Path) -> list[str]:
    """``command`` run by callgrind, counting nothing until told; its messages to a file."""
    return [
        VALGRIND, "--tool=callgrind", "--instr-atstart=no",
        f"--callgrind-out-file={out_dir / 'callgrind.out'}",
        f"--log-file={out_dir / 'valgrind.log'}",
        *command,
    ]  # fmt: skip


def _dumped(out_dir: Path) -> int:
    """The instructions in the dump asked for (``callgrind.out.1``, written by ``--dump``)."""
    dumps = sorted(out_dir.glob("callgrind.out.*"))
    if not dumps:
        raise RuntimeError(f"callgrind wrote no dump; see {out_dir / 'valgrind.log'}")
    return parse_totals(dumps[0].read_text(errors="replace"))


def count_http(
    command: Sequence[str],
    *,
    load: Load,
    out_dir: Path,
    seconds: float,
    warmup: float,
    port: int | None = None,
) -> Count:
    """Serve ``command`` under callgrind; count its instructions during ``seconds`` of ``load``.

    The server prints its port on its first line, or listens on ``port``
    (then it is waited for, and killed once counted).  Instrumentation is off
    while the server starts and warms up (``warmup`` seconds of load), on for
    the measured run, then the counts are dumped.
    """
    proc = subprocess.Popen(
        _under_callgrind(command, out_dir), stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    stops_on_stdin = port is None  # one that listens where it was told stops on SIGTERM
    try:
        assert proc.stdout is not None
        if port is None:
            line = proc.stdout.readline().decode()  # the port, once the server listens
            if not line.strip().isdigit():
                raise RuntimeError(f"{' '.join(command)} did not start under valgrind: {line!r}")
            port = int(line)
        else:
            process = gateway.Process(" ".join(command), proc, port)
            gateway.wait_listening(process, timeout=START_TIMEOUT)
        load(port, warmup)
        _control("--instr=on", proc.pid)
        requests = load(port, seconds)
        _control("--dump", proc.pid)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        if not stops_on_stdin:
            proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return Count(requests, _dumped(out_dir))


async def count_grpc(
    name: str,
    command: Sequence[str],
    *,
    metadata: tuple[tuple[str, str], ...],
    out_dir: Path,
    seconds: float,
    warmup: float,
) -> Count:
    """As :func:`count_http`, for a gRPC server loaded by ``bench/grpc_server.py``'s client."""
    target = grpc_server.Target(name, command=_under_callgrind(command, out_dir), metadata=metadata)
    try:
        await target.round(warmup)
        _control("--instr=on", target.proc.pid)
        calls = int((await target.round(seconds))["calls"])
        _control("--dump", target.proc.pid)
    finally:
        await target.close()
    return Count(calls, _dumped(out_dir))


def _commands(transport: str) -> dict[str, list[str]]:
    """variant -> server command, as the report starts them (FastAPI left out: not kitpy)."""
    if transport == "http":
        return {n: c for n, c in report.http_commands().items() if n != "fastapi"}
    own = [sys.executable, grpc_server.__file__, "--serve"]  # grpc_server.py's own variants
    return {n: c or [*own, n] for n, c in report.grpc_commands().items()}


async def measure(
    transport: str, names: Sequence[str], seconds: float, warmup: float
) -> dict[str, Count]:
    """Count every variant in ``names`` of ``transport``, one after the other."""
    commands = _commands(transport)
    token = bench_token()
    counts: dict[str, Count] = {}
    with tempfile.TemporaryDirectory() as tmp:
        script = http_server.write_wrk_script(Path(tmp) / "post.lua", token=token)

        def wrk(port: int, seconds: float) -> int:
            return http_server.run_wrk(port, seconds, script).requests

        for name in names:
            out_dir = Path(tmp) / name
            out_dir.mkdir()
            if transport == "http":
                count = count_http(commands[name], load=wrk, out_dir=out_dir,
                                   seconds=seconds, warmup=warmup)  # fmt: skip
            else:
                count = await count_grpc(
                    name, commands[name], metadata=(("authorization", f"Bearer {token}"),),
                    out_dir=out_dir, seconds=seconds, warmup=warmup,
                )  # fmt: skip
            counts[name] = count
            print(f"{transport} {name:>15}  {count.requests:>6} requests  "
                  f"{count.per_request:>10,.0f} per request", flush=True)  # fmt: skip
    return counts


def measure_gateway(names: Sequence[str], seconds: float, warmup: float) -> dict[str, Count]:
    """Count ``bench/gateway.py``'s rows in ``names`` (``raw_proxy``, ``gateway``,
    ``raw_transcode``, ``gateway_connect``), its upstreams running outside valgrind."""
    load_cpus = http_server.cpu_split()[1]
    counts: dict[str, Count] = {}
    checked: set[int] = set()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        script = http_server.write_wrk_script(workdir / "post.lua")
        upstreams = {"http": gateway.start_python("upstream_http", load_cpus)}
        try:
            upstreams["grpc"] = gateway.start_python("upstream_grpc", load_cpus)
            for name in names:
                path = gateway.PATHS[name]
                upstream = upstreams["http" if path == gateway.PROXY_PATH else "grpc"]
                port: int | None = None
                if name.startswith("raw_"):
                    command = [sys.executable, gateway.__file__, "--serve", name,
                               "--upstream", f"127.0.0.1:{upstream.port}"]  # fmt: skip
                else:
                    command, port = gateway.gateway_command(
                        workdir, upstreams["http"].port, upstreams["grpc"].port
                    )

                def load(port: int, seconds: float, path: str = path) -> int:
                    if port not in checked:  # before the warm-up only (its request is not wrk's)
                        gateway.check(port, path)  # the pool may answer 503 until it has filled
                        checked.add(port)
                    return gateway.run_wrk(port, path, max(1, round(seconds)), script)[0]

                out_dir = workdir / name
                out_dir.mkdir()
                count = count_http(command, load=load, out_dir=out_dir, seconds=seconds,
                                   warmup=warmup, port=port)  # fmt: skip
                counts[name] = count
                print(f"gateway {name:>15}  {count.requests:>6} requests  "
                      f"{count.per_request:>10,.0f} per request", flush=True)  # fmt: skip
        finally:
            for process in upstreams.values():
                process.stop()
    return counts


def _gateway_figures(counts: dict[str, Count]) -> dict[str, object]:
    figures: dict[str, object] = {"bench": "instructions", "transport": "gateway"}
    for name, c in counts.items():
        figures[f"{name}_instructions_per_request"] = round(c.per_request)
    for ratio, (raw, row) in GATEWAY_RATIOS.items():
        if raw in counts and row in counts:
            figures[f"ir_ratio_{ratio}"] = round(
                counts[raw].per_request / counts[row].per_request, 3
            )
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transport", choices=("http", "grpc", "gateway"), default="http")
    parser.add_argument(
        "--variants",
        default="",
        help="comma-separated variants of the report (raw is always counted); for the "
        "gateway, rows of bench/gateway.py (default: all four)",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measured load seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="load seconds before counting")
    args = parser.parse_args(argv)
    for tool in (VALGRIND, CALLGRIND_CONTROL, *([http_server.WRK] * (args.transport != "grpc"))):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt-get install valgrind wrk")
    if args.transport == "gateway":
        rows = [n for n in args.variants.split(",") if n] or list(gateway.PATHS)
        rows = [n for n in rows if n != "nginx"]  # not Python: nothing to compare it with
        unknown = [n for n in rows if n not in gateway.PATHS]
        if unknown:
            sys.exit(f"unknown rows {unknown}; choose from {sorted(gateway.PATHS)}")
        print(json.dumps(_gateway_figures(measure_gateway(rows, args.seconds, args.warmup))))
        return
    commands = _commands(args.transport)
    names = [n for n in (args.variants or ",".join(DEFAULT_VARIANTS)).split(",") if n]
    unknown = [n for n in names if n not in commands]
    if unknown:
        sys.exit(f"unknown variants {unknown}; choose from {sorted(commands)}")
    if "raw" not in names:
        names.insert(0, "raw")
    counts = asyncio.run(measure(args.transport, names, args.seconds, args.warmup))
    raw = counts["raw"].per_request
    figures: dict[str, object] = {"bench": "instructions", "transport": args.transport}
    for name, c in counts.items():
        figures[f"{name}_instructions_per_request"] = round(c.per_request)
        if name != "raw":
            figures[f"ir_ratio_{name}"] = round(raw / c.per_request, 3)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
