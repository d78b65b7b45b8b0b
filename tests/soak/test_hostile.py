"""A short slow-client scenario in the suite (``make soak`` runs it longer, with the flood).

A real stringsvc process with a connection cap of 50 and a 1 s idle timeout:
idle connections over the cap are refused with 503 and summarised in one log
line, the rest are closed after the idle timeout, stalled headers too, and a
well-behaved client is served throughout once there is room.
"""

from __future__ import annotations

from pathlib import Path

from .hostile import slow_clients


async def test_slow_clients_are_refused_or_closed_and_everyone_else_is_served(
    tmp_path: Path,
) -> None:
    result = await slow_clients(tmp_path, cap=50, idle_timeout=1.0, stalled=10, stall_bodies=False)
    table = result.table()
    assert result.problems == [], table
    assert result.counts["idle connection: 503"] == 50, table
    assert result.counts["idle connection after 1 s: closed"] == 50, table
    assert result.counts["call during stalls: 200"] == 35, table  # the room the 10 stalls leave
    assert result.counts["stalled headers: closed"] == 10, table
    assert result.counts["log lines about refused connections"] == 1, table
