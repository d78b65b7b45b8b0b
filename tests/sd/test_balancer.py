"""Balancers: round robin, random, weighted random, P2C; balanced() and lb_retry()."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from kitpy import Context, Endpoint, Unavailable
from kitpy.endpoint import endpoint_name
from kitpy.endpoint import named as give_name
from kitpy.errors import InvalidArgument
from kitpy.resilience import RetryError
from kitpy.sd import (
    P2C,
    Balancer,
    Instance,
    Random,
    RoundRobin,
    WeightedRandom,
    balanced,
    lb_retry,
)
from kitpy.testing import FakeClock


def named(
    name: str, *, delay: float = 0.0, fail: BaseException | None = None
) -> Endpoint[int, str]:
    async def endpoint(ctx: Context, request: int) -> str:
        if delay:
            await asyncio.sleep(delay)
        if fail is not None:
            raise fail
        return name

    endpoint.__name__ = name
    return endpoint


@dataclass
class Pool:
    """A hand-made endpoint source (what an Endpointer provides)."""

    endpoints: Sequence[Endpoint[int, str]] = ()
    instances: Sequence[Instance] = field(default_factory=tuple)

    @classmethod
    def of(cls, *names: str, weights: Sequence[int] = (), priorities: Sequence[int] = ()) -> Pool:
        ws = list(weights) or [1] * len(names)
        ps = list(priorities) or [0] * len(names)
        return cls(
            tuple(named(n) for n in names),
            tuple(Instance(n, weight=w, priority=p) for n, w, p in zip(names, ws, ps, strict=True)),
        )


def pick_names(balancer: Balancer[int, str], n: int) -> list[str]:
    return [getattr(balancer.pick(), "__name__", "?") for _ in range(n)]


async def call_names(balancer: Balancer[int, str], n: int) -> Counter[str]:
    return Counter([await balanced(balancer)(Context(), i) for i in range(n)])


@pytest.mark.parametrize(
    "make",
    [
        RoundRobin,
        lambda pool: Random(pool, rng=random.Random(1)),
        lambda pool: WeightedRandom(pool, rng=random.Random(1)),
        lambda pool: P2C(pool, rng=random.Random(1)),
        lambda pool: P2C(pool, peak_ewma=True, rng=random.Random(1)),
    ],
)
async def test_every_balancer_raises_unavailable_on_an_empty_set(make: object) -> None:
    balancer = make(Pool())  # type: ignore[operator]
    with pytest.raises(Unavailable, match="no endpoints"):
        balancer.pick()
    with pytest.raises(Unavailable, match="no endpoints"):
        await balanced(balancer)(Context(), 1)


def test_round_robin_takes_turns_and_follows_set_changes() -> None:
    pool = Pool.of("a", "b", "c")
    rr = RoundRobin(pool)
    assert pick_names(rr, 6) == ["a", "b", "c", "a", "b", "c"]
    pool.endpoints = pool.endpoints[:2]
    assert sorted(pick_names(rr, 4)) == ["a", "a", "b", "b"]


def test_random_is_uniform_and_reproducible_with_a_seed() -> None:
    pool = Pool.of("a", "b", "c", "d")
    first = pick_names(Random(pool, rng=random.Random(7)), 4000)
    assert first == pick_names(Random(pool, rng=random.Random(7)), 4000)
    counts = Counter(first)
    assert set(counts) == {"a", "b", "c", "d"}
    assert all(850 < c < 1150 for c in counts.values()), counts


def test_weighted_random_honours_priority_then_weight() -> None:
    pool = Pool.of("a", "b", "zero", "backup", weights=[60, 20, 0, 100], priorities=[1, 1, 1, 2])
    counts = Counter(pick_names(WeightedRandom(pool, rng=random.Random(3)), 8000))
    assert set(counts) == {"a", "b"}  # lowest priority only; weight 0 never chosen
    assert 2.6 < counts["a"] / counts["b"] < 3.4  # 60:20
    all_zero = Pool.of("x", "y", weights=[0, 0])
    assert set(pick_names(WeightedRandom(all_zero, rng=random.Random(3)), 200)) == {"x", "y"}


async def test_p2c_prefers_the_endpoint_with_fewer_requests_in_flight() -> None:
    gate = asyncio.Event()
    parked: list[str] = []

    def endpoint(name: str) -> Endpoint[int, str]:
        async def call(ctx: Context, request: int) -> str:
            if not parked:  # the very first call parks until the gate opens
                parked.append(name)
                await gate.wait()
            return name

        return call

    p2c = P2C(Pool((endpoint("x"), endpoint("y"))), rng=random.Random(5))
    first = asyncio.ensure_future(balanced(p2c)(Context(), 0))
    await asyncio.sleep(0)
    assert len(parked) == 1
    other = "y" if parked == ["x"] else "x"
    # with two endpoints P2C compares both every time: the idle one always wins
    assert await call_names(p2c, 20) == Counter({other: 20})
    gate.set()
    async with asyncio.timeout(2):
        assert await first == parked[0]


async def test_p2c_pick_other_never_returns_an_endpoint_to_avoid() -> None:
    p2c: P2C[int, str] = P2C(Pool.of("a", "b", "c"), rng=random.Random(3))
    first = p2c.pick()
    tried: set[object] = {first}
    seen = {p2c.pick_other(tried) for _ in range(200)}
    assert first not in seen
    assert None not in seen
    assert len(seen) == 2  # both others, at random
    second = p2c.pick_other(tried)
    assert second is not None
    tried.add(second)
    third = p2c.pick_other(tried)
    assert third is not None
    assert third not in (first, second)
    tried.add(third)
    assert p2c.pick_other(tried) is None  # every endpoint tried
    assert P2C(Pool()).pick_other(set()) is None  # none at all: None, not Unavailable
    # the calls it returns are the accounted ones: a call made through one counts as in flight
    assert p2c.pick_other(set()) in tried


async def test_p2c_sidelines_a_failing_endpoint_for_the_penalty_period() -> None:
    clock = FakeClock()
    dead = named("dead", fail=ConnectionRefusedError("refused"))
    pool = Pool((dead, named("live")))
    p2c = P2C(pool, failure_penalty=2.0, clock=clock, rng=random.Random(2))
    endpoint = balanced(p2c)
    failures = 0
    for i in range(20):
        try:
            await endpoint(Context(), i)
        except ConnectionRefusedError:
            failures += 1
    assert failures == 1  # after the first failure "dead" loses every comparison
    clock.advance(2.1)
    names: Counter[str] = Counter()
    for i in range(20):
        try:
            names[await endpoint(Context(), i)] += 1
        except ConnectionRefusedError:
            names["dead"] += 1
    assert names["dead"] == 1  # probed once again after the penalty, then sidelined again


async def test_p2c_does_not_sideline_on_client_faults() -> None:
    clock = FakeClock()
    picky = named("picky", fail=InvalidArgument("bad input"))
    pool = Pool((picky, named("other")))
    p2c = P2C(pool, clock=clock, rng=random.Random(2))
    seen: Counter[str] = Counter()
    for i in range(40):
        try:
            seen[await balanced(p2c)(Context(), i)] += 1
        except InvalidArgument:
            seen["picky"] += 1
    assert seen["picky"] > 10  # never penalised: it answered, the request was wrong


async def share_of_slow(balancer: Balancer[int, str], *, workers: int, calls: int) -> float:
    endpoint = balanced(balancer)
    counts: Counter[str] = Counter()

    async def worker() -> None:
        for i in range(calls):
            counts[await endpoint(Context(), i)] += 1

    async with asyncio.timeout(20):
        await asyncio.gather(*(worker() for _ in range(workers)))
    return counts["slow"] / sum(counts.values())


def slow_pool() -> Pool:
    return Pool(
        (named("fast1", delay=0.001), named("fast2", delay=0.001), named("slow", delay=0.02))
    )


async def test_p2c_sends_a_slow_instance_clearly_less_traffic_than_round_robin() -> None:
    rr = await share_of_slow(RoundRobin(slow_pool()), workers=12, calls=25)
    p2c = await share_of_slow(P2C(slow_pool(), rng=random.Random(42)), workers=12, calls=25)
    ewma = await share_of_slow(
        P2C(slow_pool(), peak_ewma=True, default_rtt=0.001, rng=random.Random(42)),
        workers=12,
        calls=25,
    )
    print(f"slow instance's share: round robin {rr:.3f}, p2c {p2c:.3f}, peak ewma {ewma:.3f}")
    assert 0.30 <= rr <= 0.36  # round robin is blind: a third
    assert p2c < min(0.20, rr / 2), (rr, p2c)
    assert ewma < min(0.20, rr / 2), (rr, ewma)


async def test_lb_retry_moves_each_attempt_to_a_freshly_picked_instance() -> None:
    calls: list[str] = []

    def tracked(name: str, fail: BaseException | None) -> Endpoint[int, str]:
        inner = named(name, fail=fail)

        async def endpoint(ctx: Context, request: int) -> str:
            calls.append(name)
            return await inner(ctx, request)

        return endpoint

    pool = Pool((tracked("down", Unavailable("gone")), tracked("up", None)))
    endpoint = lb_retry(RoundRobin(pool), max_attempts=2, base_delay=0.0)
    assert await endpoint(Context(), 1) == "up"
    assert calls == ["down", "up"]


async def test_lb_retry_gives_up_with_a_retry_error_when_nothing_is_left() -> None:
    endpoint = lb_retry(RoundRobin(Pool()), max_attempts=3, base_delay=0.0)
    with pytest.raises(RetryError) as info:
        await endpoint(Context(), 1)
    assert [str(e) for e in info.value.errors] == ["no endpoints"] * 3
    assert isinstance(info.value.last, Unavailable)


async def test_balanced_and_lb_retry_carry_the_name_they_are_given() -> None:
    pool = Pool.of("a", "b")
    assert endpoint_name(balanced(RoundRobin(pool))) is None
    assert endpoint_name(balanced(RoundRobin(pool), name="uppercase")) == "uppercase"
    ep = lb_retry(RoundRobin(pool), name="uppercase", max_attempts=2)
    assert endpoint_name(ep) == "uppercase"
    assert await ep(Context(), 1) in ("a", "b")


@pytest.mark.parametrize("peak_ewma", [False, True])
def test_p2c_keeps_the_name_of_the_endpoints_it_picks(peak_ewma: bool) -> None:
    pool = Pool((give_name("upper@a")(named("a")),))
    assert endpoint_name(P2C(pool, peak_ewma=peak_ewma).pick()) == "upper@a"
