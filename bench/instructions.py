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

It prints a line per variant and a JSON line whose ``ir_ratio_<variant>`` keys
are raw's instructions per request over the variant's: the same direction as
the report's ratios (1.0 = as little work as raw, 0.5 = twice the work).

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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import grpc_server, http_server, report
from bench.fullstack import bench_token

__all__ = ["Count", "count_grpc", "count_http", "main", "measure", "parse_totals"]

VALGRIND = "valgrind"
CALLGRIND_CONTROL = "callgrind_control"
DEFAULT_VARIANTS = ("raw", "kitpy", "full_stack")


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
    command: Sequence[str], *, script: Path, out_dir: Path, seconds: float, warmup: float
) -> Count:
    """Serve ``command`` under callgrind; count its instructions during ``seconds`` of wrk.

    Instrumentation is off while the server starts and warms up (``warmup``
    seconds of wrk), on for the measured run, then the counts are dumped.
    """
    proc = subprocess.Popen(
        _under_callgrind(command, out_dir),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the port, once the server listens
        if not line.strip().isdigit():
            raise RuntimeError(f"{' '.join(command)} did not start under valgrind: {line!r}")
        port = int(line)
        http_server.run_wrk(port, warmup, script)
        _control("--instr=on", proc.pid)
        requests = http_server.run_wrk(port, seconds, script).requests
        _control("--dump", proc.pid)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
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
        for name in names:
            out_dir = Path(tmp) / name
            out_dir.mkdir()
            if transport == "http":
                count = count_http(commands[name], script=script, out_dir=out_dir,
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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transport", choices=("http", "grpc"), default="http")
    parser.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help="comma-separated variants of the report (raw is always counted)",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measured load seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="load seconds before counting")
    args = parser.parse_args(argv)
    for tool in (VALGRIND, CALLGRIND_CONTROL, *([http_server.WRK] * (args.transport == "http"))):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt-get install valgrind wrk")
    commands = _commands(args.transport)
    names = [n for n in args.variants.split(",") if n]
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
