"""The benchmark report: kitpy against raw aiohttp, raw grpc.aio and FastAPI, side by side.

``make bench`` runs this.  In one session on one machine it serves stringsvc's
uppercase call from separate server processes on 127.0.0.1 and drives them
all with the same load generator:

HTTP (``wrk``, one thread, 16 connections, the same POST body and bearer token):
    ``raw``        raw aiohttp handler            (bench/http_server.py)
    ``kitpy``      kitpy HTTP Server, bare        (bench/http_server.py)
    ``full_stack`` kitpy with the full stack      (bench/fullstack.py)
    ``full_stack_0`` / ``full_stack_100``: the same with 0 % / 100 % of requests traced
    ``fastapi``    FastAPI + uvicorn, instrumented (bench/fastapi_app.py)
    ``handmade``   raw aiohttp doing the full stack's work by hand, no kitpy (bench/handmade.py)
gRPC (the grpc.aio load client of bench/grpc_server.py, 32 calls in flight):
    ``raw``        raw grpc.aio servicer          (bench/grpc_server.py)
    ``kitpy``      kitpy gRPC Server, bare        (bench/grpc_server.py)
    ``full_stack`` kitpy with the full stack      (bench/fullstack.py)
    ``full_stack_0`` / ``full_stack_100``: the same with 0 % / 100 % of requests traced
    ``handmade``   raw grpc.aio doing the full stack's work by hand, no kitpy (bench/handmade.py)

The full stack samples 10 % of requests (head sampling); the 0 % and 100 % variants show
what tracing costs (``ratio_*_full_stack_sample0`` / ``..._sample100``, not targets).
``ratio_*_handmade`` is what the full stack's library calls cost when a person
writes them into a raw aiohttp handler or grpc.aio servicer, and
``ratio_*_full_stack_vs_handmade`` what kitpy's full stack does against that
(neither is a target).

Each round starts fresh server processes, warms them, and measures every variant
of a transport in 1 s bursts that go round the variants forward and back (so all
see the same stretch of the machine); the ratios are the medians of the
per-round throughput ratios.  Fresh processes, because two processes serving the
*same* app differ by up to ~4 %: CPython's type-attribute cache is indexed by
type version and name address, so which hot lookups collide (and fall back to
walking the MRO) differs per process -- callgrind counted 118 and 457
instructions a request in that walk for two kitpy bare processes.  One process
per variant for the whole run put that luck into every round of the variant.  It prints a
table (req/s, p50, p99, server CPU per request, ratio to raw), writes the raw
figures to ``bench/results/``, the chart to ``bench/report.png`` and the table
into ``bench/README.md``, and ends with one JSON line (``ratio_http_bare``,
``ratio_grpc_bare``, ``ratio_http_full_stack``, ``ratio_vs_fastapi``, ...).

Run: ``python bench/report.py`` (about 9 minutes) or ``--quick`` (about 2 minutes,
publishes nothing unless ``--publish``).
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
import datetime
import json
import platform
import shutil
import statistics
import subprocess
import tempfile
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import grpc_server, http_server
from bench.fullstack import SAMPLE_RATIO, bench_token

__all__ = [
    "FULL",
    "QUICK",
    "TARGETS",
    "VARIANTS",
    "Settings",
    "Summary",
    "format_table",
    "main",
    "markdown_section",
    "summarize",
    "update_readme",
    "write_chart",
]

BENCH = Path(_BENCH_DIR)
README = BENCH / "README.md"
CHART = BENCH / "report.png"
RESULTS = BENCH / "results"
BEGIN, END = "<!-- report:begin -->", "<!-- report:end -->"

Round = dict[str, float]
"""One measurement: ``rps``, ``p50_ms``, ``p99_ms``, ``cpu_us`` (server CPU per request)."""
Measurements = dict[str, dict[str, list[Round]]]
"""transport -> variant -> one :data:`Round` per round."""


@dataclass(frozen=True)
class Settings:
    """How long to measure: ``rounds`` per transport, ``seconds`` per measurement."""

    rounds: int
    seconds: float
    warmup: float


FULL = Settings(rounds=7, seconds=4.0, warmup=1.0)
QUICK = Settings(rounds=3, seconds=1.0, warmup=1.0)

VARIANTS: dict[str, dict[str, str]] = {
    "http": {
        "raw": "raw aiohttp",
        "kitpy": "kitpy bare",
        "full_stack": "kitpy full stack",
        "full_stack_0": "kitpy full stack, 0% sampled",
        "full_stack_100": "kitpy full stack, 100% sampled",
        "fastapi": "FastAPI full stack",
        "handmade": "raw aiohttp, full stack by hand",
    },
    "grpc": {
        "raw": "raw grpc.aio",
        "kitpy": "kitpy bare",
        "full_stack": "kitpy full stack",
        "full_stack_0": "kitpy full stack, 0% sampled",
        "full_stack_100": "kitpy full stack, 100% sampled",
        "handmade": "raw grpc.aio, full stack by hand",
    },
}
"""transport -> variant -> label, in measuring order; ``raw`` is every transport's baseline."""

RATIOS: dict[str, tuple[str, str, str]] = {
    "ratio_http_bare": ("http", "kitpy", "raw"),
    "ratio_grpc_bare": ("grpc", "kitpy", "raw"),
    "ratio_http_full_stack": ("http", "full_stack", "raw"),
    "ratio_grpc_full_stack": ("grpc", "full_stack", "raw"),
    "ratio_vs_fastapi": ("http", "full_stack", "fastapi"),
    "ratio_http_full_stack_sample0": ("http", "full_stack_0", "raw"),
    "ratio_http_full_stack_sample100": ("http", "full_stack_100", "raw"),
    "ratio_grpc_full_stack_sample0": ("grpc", "full_stack_0", "raw"),
    "ratio_grpc_full_stack_sample100": ("grpc", "full_stack_100", "raw"),
    "ratio_http_handmade": ("http", "handmade", "raw"),
    "ratio_http_full_stack_vs_handmade": ("http", "full_stack", "handmade"),
    "ratio_grpc_handmade": ("grpc", "handmade", "raw"),
    "ratio_grpc_full_stack_vs_handmade": ("grpc", "full_stack", "handmade"),
}
"""JSON key -> (transport, variant, baseline): median per-round req/s ratio variant/baseline."""

TARGETS: dict[str, float] = {
    "ratio_http_bare": 0.95,
    "ratio_grpc_bare": 0.95,
    "ratio_http_full_stack": 0.75,
    "ratio_grpc_full_stack": 0.88,
    "ratio_vs_fastapi": 2.0,
}
"""The targets of issues 9 and 22 (a ratio at or above its target passes)."""


# -- servers ------------------------------------------------------------------------------


def http_commands() -> dict[str, list[str]]:
    """variant -> the command that serves it (prints its port, stops when stdin closes)."""
    python, server = sys.executable, http_server.__file__
    return {
        "raw": [python, server, "--serve", "raw"],
        "kitpy": [python, server, "--serve", "kitpy"],
        "full_stack": [
            python, server, "--serve", "full_stack",
            "--variant", "full_stack=bench.fullstack:make_http_full_stack_app",
        ],
        "full_stack_0": [
            python, server, "--serve", "full_stack_0",
            "--variant", "full_stack_0=bench.fullstack:make_http_full_stack_app_unsampled",
        ],
        "full_stack_100": [
            python, server, "--serve", "full_stack_100",
            "--variant", "full_stack_100=bench.fullstack:make_http_full_stack_app_all_sampled",
        ],
        "fastapi": [python, str(BENCH / "fastapi_app.py")],
        "handmade": [python, str(BENCH / "handmade.py"), "--serve", "http"],
    }  # fmt: skip


def grpc_commands() -> dict[str, list[str] | None]:
    """variant -> its server command (None: bench/grpc_server.py's own ``--serve variant``)."""
    return {
        "raw": None,
        "kitpy": None,
        "full_stack": [sys.executable, str(BENCH / "fullstack.py"), "--serve", "grpc"],
        "full_stack_0": [
            sys.executable,
            str(BENCH / "fullstack.py"),
            "--serve",
            "grpc",
            "--sample-ratio",
            "0",
        ],
        "full_stack_100": [
            sys.executable,
            str(BENCH / "fullstack.py"),
            "--serve",
            "grpc",
            "--sample-ratio",
            "1",
        ],
        "handmade": [sys.executable, str(BENCH / "handmade.py"), "--serve", "grpc"],
    }


@dataclass
class Process:
    """A server process started by :func:`start`."""

    proc: subprocess.Popen[str]
    port: int

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start(command: Sequence[str], cpus: set[int] | None = None) -> Process:
    """Start a server that prints its port on the first line of stdout, on ``cpus`` if given."""
    proc = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=None if not cpus else lambda: http_server.pin(cpus),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.strip().isdigit():
        proc.kill()
        proc.wait()
        raise RuntimeError(f"{' '.join(command)} did not start: {line!r}")
    return Process(proc, int(line))


@contextmanager
def running(
    commands: Mapping[str, Sequence[str]], cpus: set[int] | None = None
) -> Iterator[dict[str, Process]]:
    """Start every command (on ``cpus`` if given), yield the processes by name, stop them all."""
    procs: dict[str, Process] = {}
    try:
        for name, command in commands.items():
            procs[name] = start(command, cpus)
        yield procs
    finally:
        for p in procs.values():
            p.stop()


# -- measuring ----------------------------------------------------------------------------


def check_http(port: int, token: str) -> None:
    """One request the way the load generator sends it; raise unless the answer is right."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{http_server.PATH}",
        data=http_server.BODY,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.loads(response.read())
    expected = json.loads(http_server.BODY)["s"].upper()
    if body != {"v": expected}:
        raise RuntimeError(f"port {port} answered {body!r}")


def alternate(names: Sequence[str], round_no: int) -> list[str]:
    """The measuring order of a round: forward on even rounds, reversed on odd ones."""
    return list(names) if round_no % 2 == 0 else list(reversed(names))


BURST_SECONDS = 1.0
"""How long one burst is: a round measures each variant in bursts, interleaved with the others'."""


def bursts(names: Sequence[str], round_no: int, seconds: float) -> list[tuple[str, float]]:
    """A round's loads: ``(variant, seconds)``, each variant ``seconds`` in all, in bursts.

    The bursts go round the variants forward, then backward, and so on (the
    round's own order alternating too), so that every variant is measured over
    the same stretch of the round and drift in the machine cancels out, as in
    ``grpc_server.py``.  Example: ``bursts(["a", "b"], 0, 2.0)`` is
    ``[("a", 1.0), ("b", 1.0), ("b", 1.0), ("a", 1.0)]``.
    """
    count = max(1, round(seconds / BURST_SECONDS))
    order = alternate(names, round_no)
    return [(name, seconds / count) for turn in range(count) for name in alternate(order, turn)]


def combine(parts: Sequence[Round]) -> Round:
    """One round of a variant from its bursts (of equal length): the mean req/s, the CPU per
    request over all of them, the median of the bursts' percentiles."""
    requests = sum(part["rps"] for part in parts)
    cpu = sum(part["cpu_us"] * part["rps"] for part in parts)
    return {
        "rps": requests / len(parts),
        "p50_ms": statistics.median(part["p50_ms"] for part in parts),
        "p99_ms": statistics.median(part["p99_ms"] for part in parts),
        "cpu_us": cpu / requests if requests else float("nan"),
    }


def measure_http(
    settings: Settings,
    token: str,
    *,
    log: Callable[[str], None],
    commands: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, list[Round]]:
    """Every HTTP variant, ``settings.rounds`` times, driven by wrk (or the Python fallback).

    ``commands`` (default :func:`http_commands`) name the servers to start.
    """
    use_wrk = shutil.which(http_server.WRK) is not None
    headers = {"Authorization": f"Bearer {token}"}
    servers = http_commands() if commands is None else commands
    # HTTP servers share one CPU, wrk the others (as in http_server.py), FastAPI's included
    server_cpus = http_server.cpu_split()[0]
    rounds: dict[str, list[Round]] = {name: [] for name in servers}
    with tempfile.TemporaryDirectory() as tmp:
        script = http_server.write_wrk_script(Path(tmp) / "post.lua", token=token)

        def load(p: Process, seconds: float) -> Round:
            cpu_before = http_server.cpu_seconds(p.proc.pid)
            if use_wrk:
                result = http_server.run_wrk(p.port, seconds, script)
                seconds = max(1, round(seconds))  # wrk runs whole seconds
            else:
                result = http_server.run_python_load(p.port, seconds, headers)
            cpu = http_server.cpu_seconds(p.proc.pid) - cpu_before
            return {
                "rps": result.rps,
                "p50_ms": result.p50_ms,
                "p99_ms": result.p99_ms,
                "cpu_us": cpu / (result.rps * seconds) * 1e6,
            }

        for round_no in range(settings.rounds):
            with running(servers, server_cpus) as procs:  # fresh every round (module docstring)
                for p in procs.values():
                    check_http(p.port, token)
                    load(p, settings.warmup)
                parts: dict[str, list[Round]] = {name: [] for name in procs}
                for name, seconds in bursts(list(procs), round_no, settings.seconds):
                    parts[name].append(load(procs[name], seconds))
                for name, measured in parts.items():
                    rounds[name].append(m := combine(measured))
                    log(f"http  round {round_no + 1}  {name:>10}  {m['rps']:>8.0f} req/s")
    return rounds


async def measure_grpc(
    settings: Settings, token: str, *, log: Callable[[str], None]
) -> dict[str, list[Round]]:
    """Every gRPC variant, ``settings.rounds`` times, driven by bench/grpc_server.py's client."""
    metadata = (("authorization", f"Bearer {token}"),)
    commands = grpc_commands()
    rounds: dict[str, list[Round]] = {name: [] for name in commands}
    for round_no in range(settings.rounds):
        targets: dict[str, grpc_server.Target] = {}
        grpc_server.pin_loop_thread(grpc_server.ALL_CPUS)  # the servers start unpinned, then pin
        try:
            for name, command in commands.items():  # fresh every round (module docstring)
                targets[name] = grpc_server.Target(name, command=command, metadata=metadata)
            # as in grpc_server.py: each server pins itself (every thread), the client its loop
            grpc_server.pin_loop_thread(http_server.cpu_split()[1])
            for target in targets.values():
                await target.round(settings.warmup)  # also checks every reply
            parts: dict[str, list[Round]] = {name: [] for name in targets}
            for name, seconds in bursts(list(targets), round_no, settings.seconds):
                parts[name].append(await targets[name].round(seconds))
            for name, measured in parts.items():
                rounds[name].append(m := combine(measured))
                log(f"grpc  round {round_no + 1}  {name:>10}  {m['rps']:>8.0f} calls/s")
        finally:
            grpc_server.pin_loop_thread(grpc_server.ALL_CPUS)
            for target in targets.values():
                await target.close()
    return rounds


# -- summarizing --------------------------------------------------------------------------


@dataclass
class Summary:
    """Medians per variant, the ratios, and what the run was."""

    medians: dict[str, dict[str, Round]]
    ratios: dict[str, float]
    per_round: dict[str, list[float]]
    cpu_ratios: dict[str, float]
    meta: dict[str, Any] = field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        """The flat JSON object of the last line."""
        out: dict[str, Any] = {"bench": "report", **self.ratios}
        for key, value in self.cpu_ratios.items():
            out[f"cpu_{key}"] = value
        for transport, variants in self.medians.items():
            for name, m in variants.items():
                out[f"{transport}_{name}_rps"] = round(m["rps"])
                out[f"{transport}_{name}_p50_ms"] = round(m["p50_ms"], 3)
                out[f"{transport}_{name}_p99_ms"] = round(m["p99_ms"], 3)
                out[f"{transport}_{name}_cpu_us"] = round(m["cpu_us"], 1)
        out.update(self.meta)
        return out


def summarize(measurements: Measurements, meta: Mapping[str, Any] | None = None) -> Summary:
    """Medians of each variant's rounds and the median per-round ratios of :data:`RATIOS`.

    ``cpu_ratios`` are the same comparisons by server CPU per request
    (baseline CPU / variant CPU, so again 1.0 = no overhead).
    """
    medians = {
        transport: {
            name: {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
            for name, rounds in variants.items()
        }
        for transport, variants in measurements.items()
    }
    ratios: dict[str, float] = {}
    per_round: dict[str, list[float]] = {}
    cpu_ratios: dict[str, float] = {}
    for key, (transport, variant, baseline) in RATIOS.items():
        variants = measurements.get(transport, {})
        if variant not in variants or baseline not in variants:
            continue
        pairs = list(zip(variants[variant], variants[baseline], strict=True))
        per_round[key] = [round(v["rps"] / b["rps"], 3) for v, b in pairs]
        ratios[key] = round(statistics.median(v["rps"] / b["rps"] for v, b in pairs), 3)
        cpu_ratios[key] = round(statistics.median(b["cpu_us"] / v["cpu_us"] for v, b in pairs), 3)
    return Summary(medians, ratios, per_round, cpu_ratios, dict(meta or {}))


def _verdict(key: str, value: float) -> str:
    target = TARGETS.get(key)
    if target is None:
        return ""
    return f"target >= {target:g}: {'met' if value >= target else 'MISSED'}"


def _ratio_to_raw(summary: Summary, transport: str, name: str) -> str:
    if name == "raw":
        return "1.00"
    key = f"ratio_{transport}_{'bare' if name == 'kitpy' else name}"
    if key in summary.ratios:
        return f"{summary.ratios[key]:.2f}"
    raw = summary.medians[transport].get("raw")
    if raw is None:
        return "-"
    return f"{summary.medians[transport][name]['rps'] / raw['rps']:.2f}"


def table_rows(summary: Summary) -> list[list[str]]:
    """One row per variant: transport, variant, req/s, p50, p99, CPU us/req, ratio to raw."""
    rows = []
    for transport, variants in summary.medians.items():
        for name, m in variants.items():
            rows.append(
                [
                    transport.upper() if transport == "http" else "gRPC",
                    VARIANTS[transport].get(name, name),
                    f"{m['rps']:.0f}",
                    f"{m['p50_ms']:.2f}",
                    f"{m['p99_ms']:.2f}",
                    f"{m['cpu_us']:.0f}",
                    _ratio_to_raw(summary, transport, name),
                ]
            )
    return rows


HEADER = ["transport", "variant", "req/s", "p50 ms", "p99 ms", "server CPU us/req", "x raw"]


def format_table(summary: Summary) -> str:
    """The plain-text table and the ratios with their targets, for stdout."""
    rows = [HEADER, *table_rows(summary)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = [
        "  ".join(
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.append("")
    for key, value in summary.ratios.items():
        rounds = ", ".join(f"{r:.3f}" for r in summary.per_round[key])
        cpu = summary.cpu_ratios[key]
        verdict = _verdict(key, value)
        lines.append(
            f"{key:<22} {value:.3f}  (per round: {rounds}; by CPU/req: {cpu:.3f})  {verdict}"
        )
    return "\n".join(lines)


def markdown_section(summary: Summary, *, chart: str = "report.png") -> str:
    """The README's results section: the run, the table, the ratios against the targets."""
    meta = summary.meta
    out = [
        f"Measured {meta.get('date', '?')} on {meta.get('machine', '?')}, "
        f"{meta.get('rounds', '?')} rounds x {meta.get('seconds', '?')} s per variant, "
        f"load average {meta.get('loadavg_before', '?')} before and "
        f"{meta.get('loadavg_after', '?')} after the run (`/proc/loadavg`).",
        "",
        f"![req/s per variant]({chart})",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join(["---"] * 2 + ["---:"] * (len(HEADER) - 2)) + "|",
    ]
    out += ["| " + " | ".join(row) + " |" for row in table_rows(summary)]
    out += [
        "",
        "| ratio | median | per round | by server CPU/req | target |",
        "|---|---:|---|---:|---|",
    ]
    for key, value in summary.ratios.items():
        rounds = ", ".join(f"{r:.2f}" for r in summary.per_round[key])
        verdict = _verdict(key, value) or "-"
        out.append(
            f"| `{key}` | {value:.3f} | {rounds} | {summary.cpu_ratios[key]:.3f} | {verdict} |"
        )
    return "\n".join(out)


def update_readme(path: Path, section: str) -> None:
    """Replace the text between the report markers in ``path`` (append them if missing)."""
    text = path.read_text() if path.exists() else ""
    block = f"{BEGIN}\n{section}\n{END}"
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block + "\n"
    path.write_text(text)


def write_chart(summary: Summary, path: Path) -> None:
    """A bar chart of req/s per variant, one panel per transport, ratio to raw on each bar."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    transports = list(summary.medians)
    bars_shown = sum(len(variants) for variants in summary.medians.values())
    fig = Figure(
        figsize=(max(5.2 * len(transports), 1.15 * bars_shown + 1.5), 4.4), layout="constrained"
    )
    FigureCanvasAgg(fig)  # the Agg backend, without touching pyplot's global state
    axes = fig.subplots(1, len(transports), squeeze=False)[0]
    colours = {
        "raw": "#8c8c8c",
        "kitpy": "#2b7bba",
        "full_stack": "#174a7e",
        "full_stack_0": "#5b9bd0",
        "full_stack_100": "#0d2a48",
        "fastapi": "#d9822b",
    }
    for ax, transport in zip(axes, transports, strict=True):
        variants = summary.medians[transport]
        names = list(variants)
        values = [variants[n]["rps"] for n in names]
        bars = ax.bar(
            [
                VARIANTS[transport].get(n, n).replace(" ", "\n", 1).replace(", ", "\n")
                for n in names
            ],
            values,
            color=[colours.get(n, "#555555") for n in names],
        )
        for bar, name in zip(bars, names, strict=True):
            ax.annotate(
                f"{bar.get_height():.0f}\n({_ratio_to_raw(summary, transport, name)}x raw)",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center", va="bottom", fontsize=8,
            )  # fmt: skip
        ax.set_title("HTTP (wrk)" if transport == "http" else "gRPC (grpc.aio client)")
        ax.set_ylabel("requests/s (median)")
        ax.set_ylim(0, max(values) * 1.25)
        ax.tick_params(axis="x", labelsize=8)
    meta = summary.meta
    fig.suptitle(
        f"stringsvc uppercase, {meta.get('date', '')}, load avg {meta.get('loadavg_before', '?')}",
        fontsize=10,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


# -- driver -------------------------------------------------------------------------------


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages (``/proc/loadavg``), or ``"?"``."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="about 2 minutes: 3 rounds of 1 s")
    parser.add_argument("--rounds", type=int, help="rounds per transport")
    parser.add_argument("--seconds", type=float, help="seconds per measurement")
    parser.add_argument(
        "--transport", choices=["http", "grpc"], action="append", help="only these (repeatable)"
    )
    parser.add_argument(
        "--publish", action=argparse.BooleanOptionalAction, default=None,
        help=f"write {CHART.name} and the README section (default: yes, except with --quick)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    settings = Settings(
        rounds=args.rounds or base.rounds, seconds=args.seconds or base.seconds, warmup=base.warmup
    )
    publish = (not args.quick) if args.publish is None else args.publish
    transports = args.transport or ["http", "grpc"]

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    token = bench_token()
    started = datetime.datetime.now(datetime.UTC)
    meta: dict[str, Any] = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
        "rounds": settings.rounds,
        "seconds": settings.seconds,
        "sample_ratio": SAMPLE_RATIO,
        "http_generator": "wrk" if shutil.which(http_server.WRK) else "aiohttp client",
        "loadavg_before": loadavg(),
    }
    measurements: Measurements = {}
    if "http" in transports:
        measurements["http"] = measure_http(settings, token, log=log)
    if "grpc" in transports:
        measurements["grpc"] = asyncio.run(measure_grpc(settings, token, log=log))
    meta["loadavg_after"] = loadavg()
    summary = summarize(measurements, meta)

    RESULTS.mkdir(exist_ok=True)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    raw = {"meta": meta, "measurements": measurements, "summary": summary.figures()}
    (RESULTS / f"report-{stamp}.json").write_text(json.dumps(raw, indent=1))
    chart = CHART if publish else RESULTS / f"report-{stamp}.png"
    write_chart(summary, chart)
    if publish:
        update_readme(README, markdown_section(summary, chart=CHART.name))

    print(format_table(summary))
    print(f"load average before {meta['loadavg_before']}, after {meta['loadavg_after']}")
    print(f"chart: {chart.relative_to(BENCH.parent)}, figures: bench/results/report-{stamp}.json")
    print(json.dumps(summary.figures()))


if __name__ == "__main__":
    main()
