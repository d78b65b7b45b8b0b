"""bench/report.py's pieces: summary, table, README section, chart, and one real HTTP round."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from bench import grpc_server, http_server, report
from bench.fullstack import bench_token
from bench.report import Measurements, Settings


def rounds(*rps: float, cpu: float = 100.0) -> list[report.Round]:
    return [{"rps": r, "p50_ms": 1.0, "p99_ms": 2.0, "cpu_us": cpu} for r in rps]


MEASUREMENTS: Measurements = {
    "http": {
        "raw": rounds(1000, 1000, 1000, cpu=100),
        "kitpy": rounds(960, 900, 990, cpu=105),
        "full_stack": rounds(800, 700, 760, cpu=130),
        "fastapi": rounds(400, 200, 300, cpu=400),
    },
    "grpc": {"raw": rounds(2000, 2000, 2000), "kitpy": rounds(1900, 1950, 1800)},
}


def test_summary_takes_the_median_of_per_round_ratios() -> None:
    summary = report.summarize(MEASUREMENTS, {"date": "today"})
    assert summary.ratios["ratio_http_bare"] == 0.96
    assert summary.per_round["ratio_http_bare"] == [0.96, 0.9, 0.99]
    assert summary.ratios["ratio_http_full_stack"] == 0.76
    assert summary.ratios["ratio_vs_fastapi"] == 2.533  # 800/400, 700/200, 760/300
    assert summary.ratios["ratio_grpc_bare"] == 0.95
    assert "ratio_grpc_full_stack" not in summary.ratios  # not measured
    assert summary.cpu_ratios["ratio_http_full_stack"] == round(100 / 130, 3)
    figures = summary.figures()
    assert figures["http_kitpy_rps"] == 960
    assert figures["cpu_ratio_vs_fastapi"] == round(400 / 130, 3)
    assert figures["date"] == "today"


def test_table_and_readme_section_show_every_variant_and_verdict() -> None:
    summary = report.summarize(MEASUREMENTS)
    table = report.format_table(summary)
    assert "FastAPI full stack" in table
    assert "ratio_grpc_bare        0.950" in table
    assert "target >= 0.95: met" in table
    section = report.markdown_section(summary)
    assert "| HTTP | kitpy full stack | 760 | 1.00 | 2.00 | 130 | 0.76 |" in section
    assert "| `ratio_vs_fastapi` | 2.533 |" in section
    assert "![req/s per variant](report.png)" in section
    missed = report.summarize({"http": {"raw": rounds(1000), "kitpy": rounds(500)}})
    assert "target >= 0.95: MISSED" in report.format_table(missed)
    grpc_full = {"raw": rounds(1000, 1000), "full_stack": rounds(870, 890)}  # median 0.88
    assert "target >= 0.88: met" in report.format_table(report.summarize({"grpc": grpc_full}))
    grpc_full["full_stack"] = rounds(870, 880)  # median 0.875: issue 22's gRPC bar missed
    assert "target >= 0.88: MISSED" in report.format_table(report.summarize({"grpc": grpc_full}))


def test_update_readme_replaces_only_the_marked_section(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Bench\n\nintro\n")
    report.update_readme(readme, "first")
    assert readme.read_text() == f"# Bench\n\nintro\n\n{report.BEGIN}\nfirst\n{report.END}\n"
    readme.write_text(readme.read_text() + "\n## After\n")
    report.update_readme(readme, "second")
    text = readme.read_text()
    assert "first" not in text
    assert text.startswith("# Bench\n\nintro\n")
    assert text.endswith(f"{report.BEGIN}\nsecond\n{report.END}\n\n## After\n")


def test_chart_is_a_png(tmp_path: Path) -> None:
    path = tmp_path / "chart.png"
    report.write_chart(report.summarize(MEASUREMENTS, {"date": "today"}), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000


def test_alternate_reverses_odd_rounds() -> None:
    assert report.alternate(["a", "b", "c"], 0) == ["a", "b", "c"]
    assert report.alternate(["a", "b", "c"], 1) == ["c", "b", "a"]


def test_bursts_go_round_the_variants_forward_and_back() -> None:
    assert report.bursts(["a", "b"], 0, 2.0) == [("a", 1.0), ("b", 1.0), ("b", 1.0), ("a", 1.0)]
    assert report.bursts(["a", "b", "c"], 1, 1.0) == [("c", 1.0), ("b", 1.0), ("a", 1.0)]
    assert report.bursts(["a"], 0, 0.5) == [("a", 0.5)]  # never less than one burst
    loads = report.bursts(["a", "b", "c"], 0, 4.0)
    for name in "abc":  # each variant gets its whole time
        assert sum(seconds for n, seconds in loads if n == name) == 4.0


def test_combine_averages_the_bursts_and_weighs_cpu_by_requests() -> None:
    parts = [
        {"rps": 100.0, "p50_ms": 1.0, "p99_ms": 5.0, "cpu_us": 10.0},
        {"rps": 300.0, "p50_ms": 3.0, "p99_ms": 9.0, "cpu_us": 20.0},
        {"rps": 200.0, "p50_ms": 2.0, "p99_ms": 7.0, "cpu_us": 30.0},
    ]
    combined = report.combine(parts)
    assert combined["rps"] == 200.0
    assert (combined["p50_ms"], combined["p99_ms"]) == (2.0, 7.0)
    assert combined["cpu_us"] == pytest.approx((100 * 10 + 300 * 20 + 200 * 30) / 600)


def test_one_real_http_round_sends_the_token() -> None:
    commands = {name: report.http_commands()[name] for name in ("raw", "full_stack")}
    lines: list[str] = []
    measured = report.measure_http(
        Settings(rounds=1, seconds=1.0, warmup=0.5),
        bench_token(),
        log=lines.append,
        commands=commands,
    )
    assert set(measured) == {"raw", "full_stack"}
    for name, (m,) in measured.items():
        assert m["rps"] > 0, name
        assert m["p99_ms"] >= m["p50_ms"] > 0, name
    assert len(lines) == 2


def test_every_round_starts_its_own_server_process(tmp_path: Path) -> None:
    # one process per variant for the whole run would carry its luck into every round
    pids = tmp_path / "pids"
    raw = shlex.join(report.http_commands()["raw"])
    command = ["sh", "-c", f"echo $$ >> {shlex.quote(str(pids))}; exec {raw}"]
    measured = report.measure_http(
        Settings(rounds=2, seconds=1.0, warmup=0.2),
        bench_token(),
        log=lambda line: None,
        commands={"raw": command},
    )
    assert len(measured["raw"]) == 2
    started = pids.read_text().split()
    assert len(started) == 2
    assert started[0] != started[1]


def test_a_server_that_does_not_start_is_reported() -> None:
    with pytest.raises(RuntimeError, match="did not start"):
        report.start(["python3", "-c", "print('no port here')"])


def test_every_variant_has_a_server_command_and_the_sampling_variants_set_their_ratio() -> None:
    assert set(report.http_commands()) == set(report.VARIANTS["http"])
    grpc = report.grpc_commands()
    assert set(grpc) == set(report.VARIANTS["grpc"])
    assert (grpc["full_stack_0"] or [])[-2:] == ["--sample-ratio", "0"]
    assert (grpc["full_stack_100"] or [])[-2:] == ["--sample-ratio", "1"]
    for name in ("ratio_http_full_stack_sample0", "ratio_grpc_full_stack_sample100"):
        assert name in report.RATIOS  # shown in the report...
        assert name not in report.TARGETS  # ...not a target


def thread_cpus(pid: int) -> dict[str, set[int]]:
    """Thread id -> the CPUs it may run on, for every thread of process ``pid``."""
    return {tid: os.sched_getaffinity(int(tid)) for tid in os.listdir(f"/proc/{pid}/task")}


async def test_a_grpc_bench_server_runs_every_thread_on_the_server_cpu() -> None:
    """grpc's threads too: left free, they landed on the client's CPU and spread the rounds."""
    server_cpus, _ = http_server.cpu_split()
    # on one CPU the bench pins nothing: every thread keeps the CPUs this process has
    expected = server_cpus or os.sched_getaffinity(0)
    target = grpc_server.Target("raw")
    try:
        await target.round(0.3)  # grpc's threads exist once calls have been served
        allowed = thread_cpus(target.proc.pid)
        assert len(allowed) > 1  # the loop's thread and grpc's
        assert all(cpus == expected for cpus in allowed.values()), allowed
    finally:
        await target.close()
