"""SIGTERM stringsvc under steady HTTP and gRPC load; count every call: ``-m tests.soak.drain``.

One real stringsvc process (JWT, JSON logs to a file, ``--shutdown-drain`` and
``--shutdown-grace``).  Several callers per transport, each in a loop, send
Uppercase and Count calls: the gRPC ones on one shared channel (one keep-alive
connection), the HTTP ones through one aiohttp session (a pool of keep-alive
connections, reused between calls); a health ``Watch`` stream is open.  After
a warm-up the process gets SIGTERM; the callers go on until it has exited.
Every call ends in exactly one outcome:

* ``ok`` -- the right answer;
* ``refused, not started`` -- UNAVAILABLE :data:`~kitpy.transport.grpc.serve.REFUSED_MESSAGE`:
  the server refused it while stopping (safe to retry elsewhere);
* ``refused, no listener`` -- UNAVAILABLE, or for HTTP a refused connection:
  the connection could not be made (the server was gone: safe to retry too);
* anything else is a failure: CANCELLED, another code, a wrong answer, no answer,
  and for HTTP an open keep-alive connection closed under a request sent on it
  (the attack's "EOF instead of an answer": the client cannot tell whether it ran).

It fails unless every call is ok or refused, the server's log shows as many
successful calls as the callers got (none lost in between) and its refusals
(summarised by ``server_error_logging``, flushed at exit: as many as the callers
saw), the Watch got
NOT_SERVING and ended well before the grace period, and the process exited 0
in less than drain + grace.  ``make soak`` runs it after the load soak.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import grpc
import grpc.aio
from grpc_health.v1 import health_pb2

from kitpy.transport.grpc.serve import REFUSED_MESSAGE

from .load import OK, GrpcCaller, HttpCaller, Tokens
from .services import Service, running_service
from .topology import SECRET

__all__ = [
    "NO_LISTENER",
    "REFUSED",
    "DrainOptions",
    "DrainReport",
    "drain",
    "format_report",
    "main",
]

REFUSED = "refused, not started"
NO_LISTENER = "refused, no listener"
ACCOUNTED = frozenset({OK, REFUSED, NO_LISTENER})
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass(frozen=True)
class DrainOptions:
    """What one drain run is told (the CLI flags; the defaults are ``make soak``'s)."""

    callers: int = 16
    warmup: float = 2.0
    drain: float = 0.5
    grace: float = 10.0
    deadline: float = 5.0
    log_dir: Path | None = None


@dataclass
class DrainReport:
    """Outcome counts (before / after SIGTERM), the Watch, the timings, and what went wrong."""

    before: Counter[str] = field(default_factory=Counter)
    after: Counter[str] = field(default_factory=Counter)
    details: dict[str, str] = field(default_factory=dict)
    watch: list[str] = field(default_factory=list)
    sigterm_at: float | None = None
    """When SIGTERM was sent (``time.monotonic()``)."""
    watch_ended_after: float | None = None
    exited_after: float | None = None
    exit_code: int | None = None
    logged_refusals: int = 0
    served_ok: int = 0
    problems: list[str] = field(default_factory=list)

    def table(self) -> str:
        """The counts as a table: one row per outcome, before and after SIGTERM."""
        outcomes = sorted(set(self.before) | set(self.after), key=lambda o: (o != OK, o))
        rows = [(o, str(self.before[o]), str(self.after[o])) for o in outcomes]
        total = ("total", str(sum(self.before.values())), str(sum(self.after.values())))
        head = ("outcome", "before SIGTERM", "after SIGTERM")
        widths = [max(len(r[i]) for r in (head, *rows, total)) for i in range(3)]
        lines = [
            "  ".join(x.rjust(w) for x, w in zip(r, widths, strict=True))
            for r in (head, *rows, total)
        ]
        return "\n".join(lines)


def _classify(outcome: str, detail: str) -> str:
    """GrpcCaller's outcome, with UNAVAILABLE split by why."""
    if outcome.startswith("503"):  # UNAVAILABLE
        if detail == REFUSED_MESSAGE:
            return REFUSED
        if "failed to connect" in detail or "Connection refused" in detail:
            return NO_LISTENER
        return f"UNAVAILABLE: {detail[:60]}"
    return outcome


async def _watch(service: Service, report: DrainReport) -> None:
    """Hold a health Watch open; record what it sends and when it ends after SIGTERM."""
    async with grpc.aio.insecure_channel(service.grpc_addr) as channel:
        watch: grpc.aio.UnaryStreamMultiCallable[
            health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse
        ] = channel.unary_stream(
            "/grpc.health.v1.Health/Watch",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        call = watch(health_pb2.HealthCheckRequest(service=""))
        try:
            async for response in call:
                report.watch.append(
                    health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
                )
            report.watch.append(f"ended {(await call.code()).name}")
        except grpc.aio.AioRpcError as err:
            report.watch.append(f"failed {err.code().name}")
        if report.sigterm_at is not None:
            report.watch_ended_after = time.monotonic() - report.sigterm_at


async def drain(options: DrainOptions) -> DrainReport:
    """Run one drain scenario as the module docstring says; return its report."""
    report = DrainReport()
    with contextlib.ExitStack() as stack:
        log_dir = options.log_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        log_dir.mkdir(parents=True, exist_ok=True)
        args = (
            "--jwt-secret", SECRET,
            "--shutdown-drain", f"{options.drain}", "--shutdown-grace", f"{options.grace}",
        )  # fmt: skip
        async with (
            running_service("drained", log_dir, *args) as service,
            grpc.aio.insecure_channel(service.grpc_addr) as channel,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
        ):
            callers: dict[str, GrpcCaller | HttpCaller] = {
                "gRPC": GrpcCaller(channel, Tokens(SECRET)),
                "HTTP": HttpCaller(session, service.http_url, Tokens(SECRET)),
            }
            signalled, exited = asyncio.Event(), asyncio.Event()

            async def loop(number: int, transport: str) -> None:
                caller = callers[transport]
                sent = 0
                while not exited.is_set():
                    method = "uppercase" if sent % 3 else "count"
                    text = f"drain {number} {sent}"
                    sent += 1
                    counts = report.after if signalled.is_set() else report.before
                    try:
                        async with asyncio.timeout(options.deadline + 1):
                            outcome, detail = await caller(method, text, options.deadline)
                        outcome = _classify(outcome, detail)
                    except TimeoutError:
                        outcome, detail = "hung: no answer", ""
                    except aiohttp.ClientConnectorError as exc:
                        outcome, detail = NO_LISTENER, str(exc)
                    except aiohttp.ClientError as exc:  # e.g. ServerDisconnectedError
                        outcome = f"{type(exc).__name__} on an open connection"
                        since = time.monotonic() - (report.sigterm_at or 0.0)
                        detail = f"{exc} ({since:.3f} s after SIGTERM)"
                    counts[f"{transport} {outcome}"] += 1
                    if outcome not in ACCOUNTED:
                        report.details.setdefault(f"{transport} {outcome}", detail)
                    if outcome != OK:
                        await asyncio.sleep(0.01)  # refused: try again soon, as a client would

            watching = asyncio.create_task(_watch(service, report))
            loops = [
                asyncio.create_task(loop(n, transport))
                for transport in callers
                for n in range(options.callers)
            ]
            try:
                await asyncio.sleep(options.warmup)
                report.sigterm_at = time.monotonic()
                service.proc.send_signal(signal.SIGTERM)
                signalled.set()
                report.exit_code = await service.wait(within=options.drain + options.grace + 10)
                report.exited_after = time.monotonic() - report.sigterm_at
                await asyncio.sleep(0.3)  # the callers meet the closed port
                exited.set()
                async with asyncio.timeout(options.deadline + 5):
                    await asyncio.gather(*loops)
                    await watching
            finally:
                for task in (*loops, watching):
                    task.cancel()
            for line in service.lines():
                entry = _entry(line)
                if entry.get("event") == "endpoint call" and entry.get("code") == "OK":
                    report.served_ok += 1
                elif entry.get("code") == "UNAVAILABLE" and entry.get("error") == REFUSED_MESSAGE:
                    # one line each, or summarised: "requests refused" with a count
                    count = entry.get("count", 1)
                    report.logged_refusals += count if isinstance(count, int) else 1
    _check(report, options)
    return report


def _entry(line: str) -> dict[str, object]:
    """A JSON log line as a dict ({} for anything else: announcements)."""
    with contextlib.suppress(ValueError):
        entry = json.loads(line)
        if isinstance(entry, dict):
            return entry
    return {}


def _check(report: DrainReport, options: DrainOptions) -> None:
    problems = report.problems
    for name, counts in (("before", report.before), ("after", report.after)):
        failed = {o: n for o, n in counts.items() if o.partition(" ")[2] not in ACCOUNTED}
        if failed:
            problems.append(f"{name} SIGTERM: calls neither answered nor refused: {failed}")
    for transport in ("HTTP", "gRPC"):
        if report.before[f"{transport} {OK}"] == 0:
            problems.append(f"no {transport} call succeeded before SIGTERM")
    if report.after[f"gRPC {REFUSED}"] == 0:
        problems.append("no gRPC call was refused while the server stopped (nothing was tested)")
    # server_error_logging summarises refusals (a line per method per 10 s with a count) and
    # flushes its counts on the way out: the log holds every refusal the callers saw
    refused = report.after[f"gRPC {REFUSED}"]
    if not 0 < report.logged_refusals == refused:
        problems.append(
            f"the server logged {report.logged_refusals} refusals, the callers saw {refused}"
        )
    ok = sum(n for counts in (report.before, report.after) for o, n in counts.items()
             if o.endswith(f" {OK}"))  # fmt: skip
    if report.served_ok != ok:
        problems.append(f"the server logged {report.served_ok} calls OK, the callers got {ok}")
    if report.watch[:1] != ["SERVING"] or "NOT_SERVING" not in report.watch:
        problems.append(f"the health Watch saw {report.watch}, not SERVING then NOT_SERVING")
    ended = report.watch_ended_after
    if ended is None or ended > options.drain + 2.0:
        problems.append(f"the health Watch ended {_s(ended)} after SIGTERM, not at once")
    if report.exit_code != 0:
        problems.append(f"the service exited {report.exit_code}")
    if report.exited_after is None or report.exited_after > options.drain + options.grace:
        problems.append(f"the service took {_s(report.exited_after)} to stop")


def format_report(report: DrainReport) -> str:
    """The table and the facts around it, as ``make soak`` prints them."""
    lines = [report.table(), ""]
    watch = " -> ".join(report.watch)
    lines.append(f"health Watch: {watch}; ended {_s(report.watch_ended_after)} after SIGTERM")
    lines.append(
        f"server logged {report.served_ok} calls OK and {report.logged_refusals} refusals; "
        f"exited {report.exit_code} {_s(report.exited_after)} after SIGTERM"
    )
    for outcome, detail in report.details.items():
        lines.append(f"  first '{outcome}': {detail}")
    return "\n".join(lines)


def _s(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:.3f} s"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the drain scenario from the command line; 0 when every call is accounted for."""
    defaults = DrainOptions()
    p = argparse.ArgumentParser(
        prog="python -m tests.soak.drain", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--callers", type=int, default=defaults.callers, help="concurrent callers")
    p.add_argument("--warmup", type=float, default=defaults.warmup, help="seconds before SIGTERM")
    p.add_argument("--drain", type=float, default=defaults.drain, help="--shutdown-drain, s")
    p.add_argument("--grace", type=float, default=defaults.grace, help="--shutdown-grace, s")
    p.add_argument("--log-dir", type=Path, default=None, help="keep the service log here")
    args = p.parse_args(argv)
    options = DrainOptions(
        callers=args.callers, warmup=args.warmup, drain=args.drain, grace=args.grace,
        log_dir=args.log_dir,
    )  # fmt: skip
    report = asyncio.run(drain(options))
    print("drain: SIGTERM under steady HTTP and gRPC load")
    print(format_report(report))
    if report.problems:
        print("\nFAILED:", *report.problems, sep="\n  ")
        return 1
    print("\nOK: every call answered or refused retryably, none lost")
    return 0


if __name__ == "__main__":
    sys.exit(main())
