"""SIGTERM a real stringsvc under steady HTTP and gRPC load: every call answered or refused.

The scenario of ``make soak``'s drain step (:mod:`tests.soak.drain`), shorter:
16 gRPC callers in a loop on one connection, 16 HTTP callers on pooled
keep-alive connections, and an open health Watch; then SIGTERM.  Every call
must end OK or refused retryably (never started, or no listener), none
CANCELLED, none cut off on an open keep-alive connection, none lost; the
server's log has every OK call the callers saw and its (summarised) refusals;
the Watch gets NOT_SERVING and ends at once, and the process exits 0 long
before its 10 s grace period.
"""

from __future__ import annotations

from pathlib import Path

from .drain import NO_LISTENER, REFUSED, DrainOptions, drain, format_report
from .load import OK


async def test_sigterm_under_load_loses_no_call(tmp_path: Path) -> None:
    report = await drain(DrainOptions(warmup=1.0, drain=0.3, grace=10.0, log_dir=tmp_path))
    table = format_report(report)
    assert report.problems == [], table
    assert report.before[f"gRPC {OK}"] > 0, table
    assert report.before[f"HTTP {OK}"] > 0, table
    allowed = {f"{t} {o}" for t in ("gRPC", "HTTP") for o in (OK, REFUSED, NO_LISTENER)}
    assert set(report.after) <= allowed, table
    assert report.after[f"gRPC {REFUSED}"] == report.logged_refusals > 0, table
    assert report.watch == ["SERVING", "NOT_SERVING", "ended OK"], table
    assert report.exited_after is not None
    assert report.exited_after < 3.0, table  # the Watch did not hold the 10 s grace
