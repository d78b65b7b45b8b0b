"""Benchmark: service discovery's balancers and the full load-balanced client stack.

1. Pick cost: ``pick()`` of each balancer (round robin, random, weighted
   random, P2C by in-flight, P2C peak EWMA) over 3, 30 and 300 endpoints,
   against ``random.choice`` over the same tuple -- the least any balancer
   can do.  ``ratio_<balancer>_<n>`` = balancer ns / random.choice ns.
2. Proxy throughput: the client stack a proxy uses (FixedInstancer ->
   Endpointer -> P2C -> lb_retry -> kitpy HTTP Client, three instances)
   against one kitpy HTTP Client aimed straight at one instance.  The three
   instances are three aiohttp apps in ONE server process (``--serve``), so
   both variants face the same server capacity and the difference is the
   client-side cost of discovery + balancing + retry.  ``CONCURRENCY``
   requests in flight; rounds alternate the order; ``ratio_proxy`` is the
   median of per-round req/s ratios (stack / direct).

Run: ``python bench/sd.py`` (about 30 s).
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from kitpy import Context, Endpoint
from kitpy.sd import (
    P2C,
    Balancer,
    Closer,
    Endpointer,
    FixedInstancer,
    Instance,
    Random,
    RoundRobin,
    WeightedRandom,
    lb_retry,
)
from kitpy.transport.http import (
    Client,
    Server,
    add_routes,
    decode_json,
    decode_json_response,
    encode_json,
    encode_json_request,
    start_app,
)

ROUNDS = 5
PICKS = 20_000
SIZES = (3, 30, 300)
SECONDS = 2.0
CONCURRENCY = 16
INSTANCES = 3
HERE = Path(__file__).resolve()


@dataclass(frozen=True, slots=True)
class UppercaseRequest:
    s: str


@dataclass(frozen=True, slots=True)
class UppercaseResponse:
    v: str


# -- part 1: pick cost --------------------------------------------------------------


async def _noop(ctx: Context, request: int) -> int:
    return request


def _factory(instance: Instance) -> tuple[Endpoint[int, int], Closer | None]:
    async def endpoint(ctx: Context, request: int) -> int:
        return request

    return endpoint, None


BALANCERS: dict[str, Callable[[Endpointer[int, int]], Balancer[int, int]]] = {
    "round_robin": RoundRobin,
    "random": lambda src: Random(src, rng=random.Random(1)),
    "weighted": lambda src: WeightedRandom(src, rng=random.Random(1)),
    "p2c": lambda src: P2C(src, rng=random.Random(1)),
    "p2c_ewma": lambda src: P2C(src, peak_ewma=True, rng=random.Random(1)),
}


def _time_picks(pick: Callable[[], object]) -> float:
    start = time.perf_counter_ns()
    for _ in range(PICKS):
        pick()
    return (time.perf_counter_ns() - start) / PICKS


def _median_ratio(kit: Callable[[], object], raw: Callable[[], object]) -> tuple[float, ...]:
    """Median kit ns, raw ns and kit/raw ratio over alternating rounds."""
    _time_picks(kit)  # warm-up (and build per-set caches)
    _time_picks(raw)
    kit_ns, raw_ns, ratios = [], [], []
    for _ in range(ROUNDS):
        k = _time_picks(kit)
        r = _time_picks(raw)
        kit_ns.append(k)
        raw_ns.append(r)
        ratios.append(k / r)
    return statistics.median(kit_ns), statistics.median(raw_ns), statistics.median(ratios)


async def pick_costs_for(n: int, figures: dict[str, Any]) -> None:
    instancer = FixedInstancer(
        [Instance(f"10.0.{i // 250}.{i % 250}:80", weight=1 + i % 5) for i in range(n)]
    )
    async with Endpointer(instancer, _factory) as endpointer:
        async with asyncio.timeout(5):
            await endpointer.wait_for(lambda instances: len(instances) == n)
        endpoints = tuple(endpointer.endpoints)
        choose = random.Random(1).choice

        def choice() -> object:
            return choose(endpoints)

        for name, make in BALANCERS.items():
            k, r, ratio = _median_ratio(make(endpointer).pick, choice)
            print(f"{name:>12}  {n:>4}  {k:>8.0f}  {r:>9.0f}  {ratio:>6.2f}")
            figures[f"{name}_{n}_ns"] = round(k)
            figures[f"ratio_{name}_{n}"] = round(ratio, 2)
            figures[f"choice_{n}_ns"] = round(r)
    instancer.close()


async def pick_costs(figures: dict[str, Any]) -> None:
    print(f"{'balancer':>12}  {'n':>4}  {'pick ns':>8}  {'choice ns':>9}  {'ratio':>6}")
    for n in SIZES:
        await pick_costs_for(n, figures)


# -- part 2: proxy throughput --------------------------------------------------------


def make_app() -> web.Application:
    async def uppercase(ctx: Context, request: UppercaseRequest) -> UppercaseResponse:
        return UppercaseResponse(v=request.s.upper())

    app = web.Application()
    server = Server(uppercase, decode_json(UppercaseRequest), encode_json)
    add_routes(app, {"POST /uppercase": server})
    return app


async def serve() -> None:
    """``--serve``: run INSTANCES apps in this process; print their addresses; wait for EOF."""
    apps = [await start_app(make_app(), port=0, access_log=None) for _ in range(INSTANCES)]
    print(" ".join("{}:{}".format(*a.addresses[0]) for a in apps), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for app in apps:
        await app.stop()


async def throughput(endpoint: Endpoint[UppercaseRequest, UppercaseResponse]) -> float:
    done = 0
    stop_at = time.perf_counter() + SECONDS
    request = UppercaseRequest(s="hello, kitpy benchmark")

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            await endpoint(Context(), request)
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return done / (time.perf_counter() - start)


async def proxy_throughput(figures: dict[str, Any]) -> None:
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE),
        "--serve",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=HERE.parents[1],
    )
    try:
        assert server.stdout is not None
        async with asyncio.timeout(30):
            addresses = (await server.stdout.readline()).decode().split()
        assert len(addresses) == INSTANCES, addresses
        decode = decode_json_response(UppercaseResponse)
        connector = aiohttp.TCPConnector(limit=CONCURRENCY * INSTANCES)
        async with aiohttp.ClientSession(connector=connector) as session:

            def factory(
                instance: Instance,
            ) -> tuple[Endpoint[UppercaseRequest, UppercaseResponse], Closer | None]:
                url = f"http://{instance.address}/uppercase"
                return Client(session, "POST", url, encode_json_request, decode), None

            direct = Client(
                session, "POST", f"http://{addresses[0]}/uppercase", encode_json_request, decode
            )
            async with Endpointer(FixedInstancer(addresses), factory) as endpointer:
                stack = lb_retry(P2C(endpointer), max_attempts=3)
                async with asyncio.timeout(5):
                    await endpointer.wait_for(lambda instances: len(instances) == INSTANCES)
                await throughput(stack)  # warm-up: connections to every instance
                await throughput(direct)
                stack_rps, direct_rps, ratios = [], [], []
                for round_ in range(ROUNDS):
                    if round_ % 2:
                        d = await throughput(direct)
                        s = await throughput(stack)
                    else:
                        s = await throughput(stack)
                        d = await throughput(direct)
                    stack_rps.append(s)
                    direct_rps.append(d)
                    ratios.append(s / d)
    finally:
        if server.stdin is not None:
            server.stdin.close()
        async with asyncio.timeout(10):
            await server.wait()
    s, d = statistics.median(stack_rps), statistics.median(direct_rps)
    ratio = statistics.median(ratios)
    print()
    print(f"{'client':>32}  {'req/s':>8}")
    print(f"{'Endpointer->P2C->retry->Client':>32}  {s:>8.0f}")
    print(f"{'direct Client, one instance':>32}  {d:>8.0f}")
    print(f"{'ratio':>32}  {ratio:>8.3f}")
    figures.update(proxy_rps=round(s), direct_rps=round(d), ratio_proxy=round(ratio, 3))


async def main() -> None:
    figures: dict[str, Any] = {"bench": "sd"}
    await pick_costs(figures)
    await proxy_throughput(figures)
    print(json.dumps(figures))


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        asyncio.run(serve())
    else:
        asyncio.run(main())
