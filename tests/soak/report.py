"""A soak run's report: per-phase results, cross-checks against the services, the table.

:func:`check_counts` compares the proxy's own request counters, and the
upstreams' served Uppercase calls, with what the driver saw: any request lost
between them shows as a mismatch.  :func:`check_rss` bounds memory growth.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from .load import OK, RATE_LIMITED, SHED, PhaseResult

__all__ = ["MIB", "SoakReport", "check_counts", "check_rss", "format_table"]

MIB = 1024
"""KiB per MiB (RSS is read in KiB)."""


@dataclass
class SoakReport:
    """The outcome of one run: per-phase results, RSS samples, and what went wrong."""

    results: list[PhaseResult]
    rss_kib: list[tuple[str, int]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def format_table(results: Sequence[PhaseResult]) -> str:
    """The counts table: one row per phase and transport, then totals."""
    head = ("phase", "transport", "rate/s", "sent", "ok", "429", "503", "failed")
    rows: list[tuple[str, ...]] = []
    for r in results:
        if not r.scheduled:
            continue
        for transport in ("http", "grpc"):
            sent = r.count(transport=transport)
            rejected = r.count(RATE_LIMITED, transport=transport)
            shed = r.count(SHED, transport=transport)
            ok = r.count(OK, transport=transport)
            failed = sent - ok - rejected - shed
            rate = f"{r.phase.rate:g}"
            rows.append((r.phase.name, transport, rate, str(sent), str(ok), str(rejected),
                         str(shed), str(failed)))  # fmt: skip
    total = [sum(int(row[i]) for row in rows) for i in range(3, 8)]
    rows.append(("total", "", "", *map(str, total)))
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    lines = ["  ".join(x.rjust(w) for x, w in zip(line, widths, strict=True))
             for line in (head, *rows)]  # fmt: skip
    lines.append("")
    lines.append("latency of answered requests (ms): phase  p50  p99  max   | max driver lag (ms)")
    for r in results:
        if not r.scheduled:
            continue
        lat = sorted(r.latencies) or [0.0]
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        lines.append(
            f"  {r.phase.name:>8}  {_ms(statistics.median(lat))}  {_ms(p99)}  {_ms(lat[-1])}"
            f"   | {_ms(r.max_start_lag)}"
        )
    return "\n".join(lines)


def check_counts(
    report: SoakReport, proxy: Counter[str], upstreams: Sequence[Counter[str]]
) -> None:
    """The services' own counters must agree with what the driver saw."""
    results = report.results
    seen = {
        "OK": sum(r.count(OK) for r in results),
        "RESOURCE_EXHAUSTED": sum(r.count(RATE_LIMITED) for r in results),
        "UNAVAILABLE": sum(r.count(SHED) for r in results),
    }
    for code, expected in seen.items():
        served = sum(n for key, n in proxy.items() if key.endswith(f" {code}"))
        report.notes.append(f"proxy counted {served} {code}, the driver {expected}")
        if served != expected:
            report.problems.append(f"proxy counted {served} {code} but the driver saw {expected}")
    others = {k: n for k, n in proxy.items() if n and k.split()[1] not in seen}
    if others:
        report.problems.append(f"proxy counted other codes: {others}")
    upper_ok = sum(
        n for (_, method, o), n in _all(results).items() if (method, o) == ("uppercase", OK)
    )
    served_up = [c["uppercase OK"] for c in upstreams]
    report.notes.append(f"upstreams served {served_up} Uppercase OK, the driver got {upper_ok}")
    if sum(served_up) != upper_ok:
        report.problems.append(
            f"upstreams served {sum(served_up)} Uppercase, driver got {upper_ok}"
        )


def _all(results: Sequence[PhaseResult]) -> Counter[tuple[str, str, str]]:
    total: Counter[tuple[str, str, str]] = Counter()
    for r in results:
        total.update(r.outcomes)
    return total


def check_rss(report: SoakReport, *, limit_mb: float | None, steady: float) -> None:
    """RSS after the steady phase must be within ``limit_mb`` of RSS after warm-up."""
    if limit_mb is None or len(report.rss_kib) < 2:
        return
    first, last = report.rss_kib[0][1], report.rss_kib[-1][1]
    growth = (last - first) / MIB
    report.notes.append(
        f"proxy RSS after warm-up {first / MIB:.1f} MiB, after {steady:g} s steady "
        f"{last / MIB:.1f} MiB: growth {growth:+.2f} MiB (limit {limit_mb:g} MiB)"
    )
    if growth > limit_mb:
        report.problems.append(f"proxy RSS grew {growth:.1f} MiB > {limit_mb:g} MiB")
