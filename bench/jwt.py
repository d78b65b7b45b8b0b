"""Benchmark: kitpy's JWT parser and signer middleware vs pyjwt called by hand.

Parser: ``jwt_parser(...)(endpoint)`` against the same work written by hand -- an
``async def`` layer that calls ``jwt.decode`` with the same key and puts the
claims in the Context -- for HS256 and ES256:

* cold: a new token on every call -- the cache misses and, since the cache admits
  a token on its second use, only remembers the token's hash;
* warm: the same token on every call (the cache answers; pyjwt decodes every time).

Signer: ``jwt_signer(...)`` with and without its token cache against a layer
that calls ``jwt.encode`` on every call (HS256).

The two sides alternate over several rounds and the median of the per-round
ratios is reported (kitpy / by hand).  Run: ``python bench/jwt.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

# ``python bench/jwt.py`` puts bench/ first on sys.path, where this file would
# shadow pyjwt's ``jwt`` package: drop that entry before importing it.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from kitpy import Context, Endpoint
from kitpy.auth import CLAIMS, TOKEN
from kitpy.auth.jwt import jwt_parser, jwt_signer

ROUNDS = 15
CALLS = {"HS256": 2000, "ES256": 800}

Call = Callable[[Context, None], Awaitable[Any]]


async def bare(ctx: Context, request: None) -> Context:
    return ctx


def keys(alg: str) -> tuple[Any, Any]:
    if alg == "HS256":
        secret = b"k" * 32
        return secret, secret
    private = ec.generate_private_key(ec.SECP256R1())
    return private, private.public_key()


def by_hand_parser(key: Any, alg: str) -> Endpoint[None, Context]:
    algorithms = [alg]

    async def endpoint(ctx: Context, request: None) -> Context:
        claims = jwt.decode(ctx[TOKEN], key, algorithms=algorithms)
        return await bare(ctx.with_value(CLAIMS, claims), request)

    return endpoint


def by_hand_signer(key: Any, alg: str) -> Endpoint[None, Context]:
    async def endpoint(ctx: Context, request: None) -> Context:
        now = int(time.time())
        token = jwt.encode({"sub": "svc", "iat": now, "exp": now + 300}, key, algorithm=alg)
        return await bare(ctx.with_value(TOKEN, token), request)

    return endpoint


async def time_calls(endpoint: Call, contexts: list[Context]) -> float:
    start = time.perf_counter_ns()
    for ctx in contexts:
        await endpoint(ctx, None)
    return (time.perf_counter_ns() - start) / len(contexts)


def median_ratio(kit: list[float], raw: list[float]) -> tuple[float, float, float]:
    ratios = [k / r for k, r in zip(kit, raw, strict=True)]
    return statistics.median(kit), statistics.median(raw), statistics.median(ratios)


async def bench_parser(alg: str) -> dict[str, tuple[float, float, float]]:
    private, public = keys(alg)
    n = CALLS[alg]
    exp = int(time.time()) + 3600
    tokens = [jwt.encode({"sub": f"u{i}", "exp": exp}, private, algorithm=alg) for i in range(n)]
    cold_ctx = [Context().with_value(TOKEN, t) for t in tokens]
    warm_ctx = [cold_ctx[0]] * n
    raw = by_hand_parser(public, alg)

    def fresh() -> Endpoint[None, Context]:  # a new parser: an empty cache for a cold round
        return jwt_parser(public, algorithms=[alg])(bare)

    await time_calls(fresh(), cold_ctx[:200])  # warm-up
    await time_calls(raw, cold_ctx[:200])
    results: dict[str, tuple[list[float], list[float]]] = {"cold": ([], []), "warm": ([], [])}
    for round_no in range(ROUNDS):
        kit_first = round_no % 2 == 0  # alternate which side runs first in a round
        for name, ctxs, kit in (("cold", cold_ctx, fresh()), ("warm", warm_ctx, fresh())):
            for side in (0, 1) if kit_first else (1, 0):
                results[name][side].append(await time_calls(kit if side == 0 else raw, ctxs))
    return {name: median_ratio(*pair) for name, pair in results.items()}


async def bench_signer() -> dict[str, tuple[float, float, float]]:
    key = b"k" * 32
    contexts = [Context()] * 2000
    raw = by_hand_signer(key, "HS256")
    claims = {"sub": "svc"}
    cached = jwt_signer(key, algorithm="HS256", claims=claims)(bare)
    uncached = jwt_signer(key, algorithm="HS256", claims=claims, cache=False)(bare)
    for ep in (raw, cached, uncached):
        await time_calls(ep, contexts[:200])
    results: dict[str, tuple[list[float], list[float]]] = {"cached": ([], []), "uncached": ([], [])}
    for round_no in range(ROUNDS):
        for name, ep in (("cached", cached), ("uncached", uncached)):
            for side in (0, 1) if round_no % 2 == 0 else (1, 0):
                results[name][side].append(await time_calls(ep if side == 0 else raw, contexts))
    return {name: median_ratio(*pair) for name, pair in results.items()}


async def main() -> None:
    figures: dict[str, Any] = {"bench": "jwt"}
    print(f"{'case':<22}  {'kitpy us/call':>13}  {'by hand us/call':>15}  {'ratio':>6}")

    def row(label: str, key: str, result: tuple[float, float, float]) -> None:
        kit, raw, ratio = result
        print(f"{label:<22}  {kit / 1000:>13.2f}  {raw / 1000:>15.2f}  {ratio:>6.3f}")
        figures[f"kitpy_{key}_us"] = round(kit / 1000, 2)
        figures[f"raw_{key}_us"] = round(raw / 1000, 2)
        figures[f"ratio_{key}"] = round(ratio, 3)

    for alg in ("HS256", "ES256"):
        parser = await bench_parser(alg)
        row(f"parser {alg} cold", f"cold_{alg.lower()}", parser["cold"])
        row(f"parser {alg} warm", f"warm_{alg.lower()}", parser["warm"])
    signer = await bench_signer()
    row("signer HS256 cached", "signer_cached_hs256", signer["cached"])
    row("signer HS256 uncached", "signer_uncached_hs256", signer["uncached"])
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
