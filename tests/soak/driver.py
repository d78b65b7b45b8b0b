"""Soak stringsvc's full stack, accounting for every request: ``python -m tests.soak.driver``.

Starts three real stringsvc processes -- two upstreams and a proxy in front of
them (``--proxy static://...``: P2C, retry with budget, per-instance breakers,
token-bucket rate limit) -- all requiring JWT, tracing at a sampling ratio,
JSON logs to files, Prometheus metrics.  Then it runs open-loop load on the
proxy over HTTP and gRPC (:mod:`tests.soak.load`) in phases:

1. ``warm-up``   calm rate: below the proxy's rate limit, so no rejection at all;
2. ``over``      above the limit, so the token bucket must answer some 429s;
   then one second without load, so the bucket refills;
3. ``steady``    calm rate again for ``--steady`` seconds (60 for ``make soak``).

It prints a counts table per phase and transport, checks the proxy's own
request counters against the driver's and the upstreams' served Uppercase
calls against the successful ones (nothing lost in between), and measures the
proxy's RSS (``VmRSS``) after warm-up and after the steady phase.  It exits 1
on any unaccounted request, any rejection where none was intended, no 429
where one was, a non-zero exit of a service, a traceback in a service's log,
or RSS growth over the steady phase above ``--rss-limit-mb`` (default 5 MiB:
about 0.7 KB per request of a 60 s steady phase at 120 req/s, so a per-request
leak shows; measured growth is ~0.1 MiB).

Then (unless ``--no-hostile``) the hostile-load scenarios of
:mod:`tests.soak.hostile` -- slow clients past the connection cap, a ``wrk``
flood -- each on its own stringsvc, with their counts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc.aio

from .hostile import flood, slow_clients
from .load import (
    Caller,
    GrpcCaller,
    HttpCaller,
    Phase,
    PhaseResult,
    Tokens,
    run_load,
)
from .report import MIB, SoakReport, check_counts, check_rss, format_table
from .topology import SECRET, request_counts, topology

__all__ = ["SoakOptions", "main", "soak"]

COOL_DOWN = 1.0
"""Seconds without load between the over-limit and steady phases (the bucket refills)."""


@dataclass(frozen=True)
class SoakOptions:
    """Everything one soak run is told (the CLI flags; the defaults are ``make soak``'s)."""

    warmup: float = 5.0
    over: float = 8.0
    steady: float = 60.0
    calm_rate: float = 120.0
    over_rate: float = 240.0
    proxy_qps: float = 120.0
    proxy_burst: int = 30
    deadline: float = 2.0
    margin: float = 0.5
    max_in_flight: int = 256
    proxy_transport: str = "http"
    sample_ratio: float = 0.1
    rss_limit_mb: float | None = 5.0
    rss_every: float = 10.0
    log_dir: Path | None = None
    hostile: bool = True
    """Then run the hostile-load scenarios (:mod:`tests.soak.hostile`) and report them."""


async def soak(options: SoakOptions, *, log: bool = True) -> SoakReport:
    """Run one soak as described in the module docstring; return its report."""

    def say(*parts: object) -> None:
        if log:
            print(*parts, flush=True)

    with contextlib.ExitStack() as stack:
        log_dir = options.log_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        log_dir.mkdir(parents=True, exist_ok=True)
        async with (
            topology(
                log_dir,
                proxy_transport=options.proxy_transport,
                proxy_qps=options.proxy_qps,
                proxy_burst=options.proxy_burst,
                sample_ratio=options.sample_ratio,
            ) as topo,
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session,
            grpc.aio.insecure_channel(topo.proxy.grpc_addr) as channel,
        ):
            say(f"proxy http={topo.proxy.http_addr} grpc={topo.proxy.grpc_addr} "
                f"-> {options.proxy_transport} upstreams; logs in {log_dir}")  # fmt: skip
            tokens = Tokens(SECRET)
            callers: dict[str, Caller] = {
                "http": HttpCaller(session, topo.proxy.http_url, tokens),
                "grpc": GrpcCaller(channel, tokens),
            }
            phases = [
                Phase("warm-up", options.warmup, options.calm_rate),
                Phase("over", options.over, options.over_rate, over_limit=True),
                Phase("cool-down", COOL_DOWN, 0.0),  # the proxy's token bucket refills
                Phase("steady", options.steady, options.calm_rate),
            ]
            rss: list[tuple[str, int]] = []

            def sample(result: PhaseResult) -> None:
                if result.phase.name == "cool-down":  # warm: every code path has run
                    rss.append(("after warm-up", topo.proxy.rss_kib()))
                elif result.phase.name == "steady":
                    rss.append((f"after {options.steady:g} s steady", topo.proxy.rss_kib()))

            async def sample_steady() -> None:
                await asyncio.sleep(options.warmup + options.over + COOL_DOWN)
                elapsed = 0.0
                while elapsed + options.rss_every < options.steady:
                    await asyncio.sleep(options.rss_every)
                    elapsed += options.rss_every
                    rss.append((f"steady {elapsed:g} s", topo.proxy.rss_kib()))

            sampler = asyncio.create_task(sample_steady())
            try:
                results = await run_load(
                    phases,
                    callers,
                    deadline=options.deadline,
                    margin=options.margin,
                    max_in_flight=options.max_in_flight,
                    on_phase_end=sample,
                )
            finally:
                sampler.cancel()
            report = SoakReport(results, rss)
            proxy_counts = await request_counts(session, topo.proxy)
            upstream_counts = [await request_counts(session, u) for u in topo.upstreams]
            check_counts(report, proxy_counts, upstream_counts)
            for r in results:
                report.problems.extend(r.problems())
            check_rss(report, limit_mb=options.rss_limit_mb, steady=options.steady)
            for service in topo.services:
                code = await service.stop()
                if code != 0:
                    report.problems.append(f"{service.name} exited {code}:\n{service.tail()}")
                if any("Traceback" in line for line in service.lines()):
                    report.problems.append(
                        f"{service.name} logged a traceback ({service.log_path})"
                    )
        say(format_table(results))
        for r in results:
            for outcome, detail in r.details.items():
                say(f"  {r.phase.name}: first '{outcome}': {detail}")
        for note in report.notes:
            say(note)
        for name, kib in report.rss_kib:
            say(f"proxy RSS {name:>14}: {kib / MIB:7.1f} MiB")
        if options.hostile:
            for scenario in (slow_clients, flood):
                result = await scenario(log_dir)
                say(result.table())
                report.problems.extend(result.problems)
        return report


def _parser() -> argparse.ArgumentParser:
    defaults = SoakOptions()
    p = argparse.ArgumentParser(
        prog="python -m tests.soak.driver",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--warmup", type=float, default=defaults.warmup, help="warm-up seconds")
    p.add_argument("--over", type=float, default=defaults.over, help="over-limit seconds")
    p.add_argument("--steady", type=float, default=defaults.steady, help="steady seconds")
    p.add_argument("--calm-rate", type=float, default=defaults.calm_rate, help="req/s, calm")
    p.add_argument("--over-rate", type=float, default=defaults.over_rate, help="req/s, over")
    p.add_argument("--proxy-qps", type=float, default=defaults.proxy_qps,
                   help="the proxy's rate limit for Uppercase (2/3 of the requests)")  # fmt: skip
    p.add_argument("--proxy-burst", type=int, default=defaults.proxy_burst)
    p.add_argument("--deadline", type=float, default=defaults.deadline, help="per request, s")
    p.add_argument("--margin", type=float, default=defaults.margin,
                   help="an answer later than deadline + margin is a failure (s)")  # fmt: skip
    p.add_argument("--max-in-flight", type=int, default=defaults.max_in_flight,
                   help="the driver's concurrency cap")  # fmt: skip
    p.add_argument("--proxy-transport", choices=["http", "grpc"], default=defaults.proxy_transport)
    p.add_argument("--sample-ratio", type=float, default=defaults.sample_ratio)
    p.add_argument("--rss-limit-mb", type=float, default=defaults.rss_limit_mb,
                   help="max proxy RSS growth in the steady phase (MiB); 0: none")  # fmt: skip
    p.add_argument("--log-dir", type=Path, default=None, help="keep service logs here")
    p.add_argument("--no-hostile", dest="hostile", action="store_false",
                   help="skip the slow-client and flood scenarios")  # fmt: skip
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak from the command line; 0 when every request is accounted for."""
    args = _parser().parse_args(argv)
    options = SoakOptions(
        warmup=args.warmup,
        over=args.over,
        steady=args.steady,
        calm_rate=args.calm_rate,
        over_rate=args.over_rate,
        proxy_qps=args.proxy_qps,
        proxy_burst=args.proxy_burst,
        deadline=args.deadline,
        margin=args.margin,
        max_in_flight=args.max_in_flight,
        proxy_transport=args.proxy_transport,
        sample_ratio=args.sample_ratio,
        rss_limit_mb=args.rss_limit_mb or None,
        log_dir=args.log_dir,
        hostile=args.hostile,
    )
    report = asyncio.run(soak(options))
    if report.problems:
        print("\nFAILED:", *report.problems, sep="\n  ")
        return 1
    print("\nOK: every request accounted for")
    return 0


if __name__ == "__main__":
    sys.exit(main())
