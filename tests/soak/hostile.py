"""Hostile-load scenarios against a real stringsvc process: slow clients and a flood.

Each scenario starts its own stringsvc (JSON logs to a file), attacks it as
issue 24 describes, and returns a :class:`Scenario` with its counts and any
problems (a request not answered, a traceback in the log, a limit not held).
``python -m tests.soak.driver`` runs them after the full-stack soak and prints
their tables; ``tests/soak/test_hostile.py`` runs short versions in the suite.

* :func:`slow_clients` -- idle connections past the connection cap, stalled
  headers and stalled bodies, while a well-behaved client keeps calling.
* :func:`flood` -- ``wrk`` keeps far more connections busy than the service can
  serve, while a probe sends one request at a time and times each answer:
  the served ones must keep a bounded median and the refused ones be fast.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from .services import Service, running_service

__all__ = ["Scenario", "flood", "slow_clients"]

BODY = b'{"s": "hello"}'
POST = (
    b"POST /uppercase HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n" % len(BODY)
)


@dataclass
class Scenario:
    """One scenario's counts (printed as a table) and what went wrong."""

    name: str
    counts: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def table(self) -> str:
        width = max((len(k) for k in self.counts), default=10)
        rows = [f"  {key:<{width}}  {value:>8}" for key, value in sorted(self.counts.items())]
        return "\n".join([f"{self.name}:", *rows, *(f"  {note}" for note in self.notes)])


async def _status_of(reader: asyncio.StreamReader, within: float) -> str:
    """The status line's code of the response on ``reader``, or what happened instead."""
    try:
        async with asyncio.timeout(within):
            line = await reader.readline()
    except TimeoutError:
        return "no answer"
    except ConnectionError:
        return "reset"
    if not line:
        return "closed"
    parts = line.split()
    return parts[1].decode() if len(parts) > 1 else "garbage"


async def _call(session: aiohttp.ClientSession, service: Service) -> tuple[str, float]:
    """One Uppercase over a fresh connection: (status or error, seconds)."""
    started = time.monotonic()
    try:
        async with (
            asyncio.timeout(10),
            session.post(
                f"{service.http_url}/uppercase",
                data=BODY,
                headers={"Content-Type": "application/json", "Connection": "close"},
            ) as resp,
        ):
            await resp.read()
            outcome = str(resp.status)
    except TimeoutError:
        outcome = "timeout"
    except aiohttp.ClientError as exc:
        outcome = type(exc).__name__
    return outcome, time.monotonic() - started


def _check_log(scenario: Scenario, service: Service) -> None:
    lines = service.lines()
    if any("Traceback" in line for line in lines):
        scenario.problems.append(f"{scenario.name}: a traceback in {service.log_path}")
    summaries = [line for line in lines if "connection(s) over the limit" in line]
    scenario.counts["log lines about refused connections"] = len(summaries)


async def slow_clients(
    log_dir: Path,
    *,
    cap: int = 100,
    idle_timeout: float = 2.0,
    stalled: int = 40,
    stall_bodies: bool = True,
) -> Scenario:
    """Idle connections over the cap, stalled headers and bodies, and a client that keeps calling.

    stringsvc runs with ``--max-connections cap --idle-timeout idle_timeout``.
    The attacker opens ``cap + 50`` idle connections and ``stalled`` each of
    stalled headers and (``stall_bodies``, which takes the 30 s body timeout)
    stalled bodies.  Expected: the connections over the cap
    are answered 503 at once; the stalled ones are closed (or answered 408)
    within the idle timeout / body timeout; refusals are summarised in the log,
    not logged one by one; once the idle connections are gone, the
    well-behaved client is served again; no request goes unanswered.
    """
    scenario = Scenario("slow clients")
    args = ("--max-connections", str(cap), "--idle-timeout", str(idle_timeout))
    async with running_service("slow", log_dir, *args) as service:
        host, port = service.http_addr.rsplit(":", 1)
        held: list[asyncio.StreamWriter] = []
        try:
            readers = []
            for _ in range(cap + 50):
                reader, writer = await asyncio.open_connection(host, int(port))
                held.append(writer)
                readers.append(reader)
            # the ones past the cap are answered at once; the first `cap` hold their slots
            answered_within = min(1.0, idle_timeout / 2)  # before the idle timeout closes any
            outcomes = await asyncio.gather(
                *(_status_of(r, within=answered_within) for r in readers)
            )
            for outcome in outcomes:
                scenario.counts[f"idle connection: {outcome}"] += 1
            refused = sum(1 for o in outcomes if o == "503")
            if refused < 50:
                scenario.problems.append(f"slow clients: only {refused} of 50 over the cap refused")
            async with aiohttp.ClientSession() as session:
                outcome, _ = await _call(session, service)
                scenario.counts[f"call while the cap is full: {outcome}"] += 1
            # idle connections are closed by the server after the idle timeout
            closed = await asyncio.gather(
                *(_status_of(r, within=idle_timeout + 3) for r in readers[:cap])
            )
            for outcome in closed:
                scenario.counts[f"idle connection after {idle_timeout:g} s: {outcome}"] += 1
            if any(o not in ("closed", "reset") for o in closed):
                scenario.problems.append("slow clients: an idle connection outlived the timeout")
        finally:
            for writer in held:
                writer.close()
        # stalled headers (closed after the idle timeout) and stalled bodies (answered 408
        # after the 30 s body timeout), with the cap free again
        partials = [("headers", b"POST /uppercase HTTP/1.1\r\nHost: soak\r\nX-Slow: ")]
        if stall_bodies:
            partials.append(("body", POST + BODY[:4]))
        stalls = []
        for kind, partial in partials:
            for _ in range(stalled):
                reader, writer = await asyncio.open_connection(host, int(port))
                writer.write(partial)
                stalls.append((reader, writer, kind))
        async with aiohttp.ClientSession() as session:  # within the cap, with the stalls
            room = min(50, cap - len(stalls) - 5)
            calls = await asyncio.gather(*(_call(session, service) for _ in range(room)))
        for outcome, _ in calls:
            scenario.counts[f"call during stalls: {outcome}"] += 1
        if any(o != "200" for o, _ in calls):
            scenario.problems.append("slow clients: a call during the stalls was not served")
        ends = await asyncio.gather(
            *(_status_of(r, within=idle_timeout + 35) for r, _, _ in stalls)
        )
        for (_, writer, kind), outcome in zip(stalls, ends, strict=True):
            scenario.counts[f"stalled {kind}: {outcome}"] += 1
            writer.close()
        if any(o in ("no answer",) for o in ends):
            scenario.problems.append("slow clients: a stalled connection was never ended")
        _check_log(scenario, service)
        if scenario.counts["log lines about refused connections"] > 3:
            scenario.problems.append("slow clients: refusals were logged one by one")
        if await service.stop() != 0:
            scenario.problems.append(f"slow clients: stringsvc exited badly:\n{service.tail()}")
    return scenario


_WRK_SCRIPT = """\
wrk.method = "POST"
wrk.body = '{"s": "hello"}'
wrk.headers["Content-Type"] = "application/json"
"""


async def flood(
    log_dir: Path,
    *,
    seconds: float = 10.0,
    connections: int = 1500,
    probes: float = 20.0,
    extra: tuple[str, ...] = (),
) -> Scenario:
    """``wrk`` floods stringsvc while a probe times one request at a time.

    stringsvc runs with a small pool (``--max-in-flight 32 --max-waiting 32
    --max-wait 0.5``) and loop-lag shedding at 100 ms (``--max-loop-lag 0.1``,
    below the default, so that this flood is shed).  Reported: wrk's
    totals and non-2xx count; the probe's served and refused counts, and the
    median and 99th percentile of each.  Problems: a probe request not answered,
    a served or a refused median over 1 s.  (With ``wrk`` keeping every
    connection busy, a request -- served or refused -- waits about one
    event-loop iteration for its turn, so the bound is the loop lag; without
    shedding the served median was 0.4 s and the 99th percentile 2.3 s at
    1,500 connections.)
    Skipped (a note) when ``wrk`` is not installed (Debian package ``wrk``).
    """
    scenario = Scenario("flood")
    wrk = shutil.which("wrk")
    if wrk is None:
        scenario.notes.append("skipped: wrk is not installed (Debian package wrk)")
        return scenario
    args = ["--max-in-flight", "32", "--max-waiting", "32", "--max-wait", "0.5"]
    args += ["--max-loop-lag", "0.1", *extra]
    async with running_service("flood", log_dir, *args) as service:
        script = _write(log_dir / "flood.lua", _WRK_SCRIPT)
        proc = await asyncio.create_subprocess_exec(
            wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script),
            f"{service.http_url}/uppercase",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        served: list[float] = []
        refused: list[float] = []
        await asyncio.sleep(1.0)  # let the flood build up
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + seconds - 2.0
            while time.monotonic() < deadline:
                outcome, took = await _call(session, service)
                scenario.counts[f"probe: {outcome}"] += 1
                (served if outcome == "200" else refused).append(took)
                if outcome not in ("200", "503"):
                    scenario.problems.append(f"flood: a probe request ended {outcome}")
                await asyncio.sleep(1.0 / probes)
        async with asyncio.timeout(seconds + 30):
            output = (await proc.communicate())[0].decode(errors="replace")
        for line in output.splitlines():
            line = line.strip()
            if "requests in" in line or line.startswith(("Non-2xx", "Requests/sec", "Socket")):
                scenario.notes.append(f"wrk: {line}")
        for name, times in (("served", served), ("refused", refused)):
            if times:
                quantiles = statistics.quantiles(times, n=100) if len(times) > 1 else times * 99
                scenario.notes.append(
                    f"probe {name}: {len(times)}, median {statistics.median(times) * 1000:.0f} ms,"
                    f" p99 {quantiles[98] * 1000:.0f} ms"
                )
        if served and statistics.median(served) > 1.0:
            scenario.problems.append("flood: the served requests' median latency is over 1 s")
        if refused and statistics.median(refused) > 1.0:
            scenario.problems.append("flood: refusals are not fast (median over 1 s)")
        metrics = await _sample(service, "kitpy_server_requests_total")
        scenario.notes.append(f"stringsvc counted: {json.dumps(metrics, sort_keys=True)}")
        _check_log(scenario, service)
        if await service.stop() != 0:
            scenario.problems.append(f"flood: stringsvc exited badly:\n{service.tail()}")
    return scenario


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


async def _sample(service: Service, name: str) -> dict[str, float]:
    """``{labels: value}`` of the metric ``name`` on the service's ``/metrics``."""
    async with (
        aiohttp.ClientSession() as session,
        asyncio.timeout(10),
        session.get(f"{service.http_url}/metrics") as resp,
    ):
        text = await resp.text()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, _, value = line[len(name) :].rpartition(" ")
            values[labels] = values.get(labels, 0.0) + float(value)
    return values
