"""Limiters, breakers and retries take live settings: changes apply now, bad ones are refused."""

from __future__ import annotations

import asyncio
import math

import pytest

from kitpy import Context, Unavailable
from kitpy.circuitbreaker import CircuitBreaker, ConsecutiveFailures, FailureRate, circuit_breaker
from kitpy.config import Live, Rejection
from kitpy.ratelimit import ConcurrencyLimiter, KeyedTokenBuckets, TokenBucket, concurrency_limit
from kitpy.resilience import RetryError, retry
from kitpy.testing import FakeClock


def test_a_token_bucket_follows_its_live_rate_and_burst() -> None:
    clock = FakeClock()
    rate, burst = Live(1.0, name="rate"), Live(2, name="burst")
    bucket = TokenBucket(rate, burst, clock=clock)
    assert [bucket.allow() for _ in range(3)] == [True, True, False]
    rate.set("10")
    clock.advance(0.1)  # 10 per second now: one token back
    assert bucket.allow()
    assert not bucket.allow()
    burst.set("5")
    clock.advance(10)
    assert sum(bucket.allow() for _ in range(10)) == 5


def test_a_bad_live_value_is_refused_by_the_bucket_and_the_old_one_stays() -> None:
    rejected: list[Rejection] = []
    rate = Live(5.0, name="rate", on_reject=rejected.append)
    bucket = TokenBucket(rate, 1)
    assert not rate.set("-1")
    assert rate.value == 5.0
    assert bucket.rate == 5.0
    assert "rate must be positive" in str(rejected[0])


def test_keyed_buckets_follow_too() -> None:
    clock = FakeClock()
    burst = Live(1, name="burst")
    buckets = KeyedTokenBuckets(1.0, burst, clock=clock)
    assert buckets.allow("a")
    assert not buckets.allow("a")
    burst.set("3")
    clock.advance(10)
    assert [buckets.allow("a") for _ in range(4)] == [True, True, True, False]
    assert [buckets.allow("b") for _ in range(4)] == [True, True, True, False]  # new keys too


async def test_a_concurrency_limit_grows_and_shrinks_live() -> None:
    limit = Live(1, name="max_in_flight")
    limiter = ConcurrencyLimiter(limit, max_waiting=10)
    release = asyncio.Event()
    entered: list[int] = []

    async def work(ctx: Context, n: int) -> int:
        entered.append(n)
        await release.wait()
        return n

    limited = concurrency_limit(0, limiter=limiter)(work)

    async def call(n: int) -> int:
        return await limited(Context(), n)

    calls = [asyncio.create_task(call(n)) for n in range(3)]
    await asyncio.sleep(0.01)
    assert entered == [0]  # one slot
    limit.set("3")  # two more slots: the queued calls start at once
    await asyncio.sleep(0.01)
    assert sorted(entered) == [0, 1, 2]
    assert limiter.in_flight == 3
    limit.set("1")  # fewer slots: calls in flight finish, new ones wait
    release.set()
    assert sorted(await asyncio.gather(*calls)) == [0, 1, 2]
    assert limiter.in_flight == 0
    assert not limit.set("0")  # refused: the limiter needs at least one slot
    assert limit.value == 1


async def test_retry_reads_its_live_attempts_at_each_failure() -> None:
    attempts = Live(2, name="retry_attempts")
    calls = 0

    async def down(ctx: Context, request: None) -> None:
        nonlocal calls
        calls += 1
        raise Unavailable("down")

    async def no_sleep(seconds: float) -> None:
        return None

    endpoint = retry(max_attempts=attempts, base_delay=0, sleep=no_sleep)(down)
    with pytest.raises(RetryError):
        await endpoint(Context(), None)
    assert calls == 2
    attempts.set("4")
    with pytest.raises(RetryError):
        await endpoint(Context(), None)
    assert calls == 2 + 4
    assert not attempts.set("0")


async def test_breaker_thresholds_are_live() -> None:
    n = Live(3, name="breaker_n")
    breaker = CircuitBreaker(policy=ConsecutiveFailures(n))

    async def down(ctx: Context, request: None) -> None:
        raise Unavailable("down")

    endpoint = circuit_breaker(breaker)(down)
    n.set("1")
    with pytest.raises(Unavailable):
        await endpoint(Context(), None)
    assert breaker.state.name == "OPEN"  # tripped after one failure, not three
    assert not n.set("0")
    threshold = Live(0.5, name="threshold")
    tracker = FailureRate(threshold=threshold).tracker(FakeClock())
    assert not threshold.set("1.5")
    assert threshold.value == 0.5
    assert threshold.set("0.9")
    del tracker  # a tracker that is gone stops following: the setting does not keep it alive


def test_a_live_rate_of_none_lifts_the_limit_and_a_rate_puts_it_back_full() -> None:
    clock = FakeClock()
    rate: Live[float | None] = Live(None, name="rate_limit", type=float | None)
    bucket = TokenBucket(rate, burst=None, clock=clock)  # burst: the rate rounded up
    assert all(bucket.allow() for _ in range(1000))  # unset: unlimited
    assert bucket.reserve("", 0.001) == 0.0
    assert (bucket.rate, bucket.tokens()) == (math.inf, math.inf)
    assert rate.set("2.5")
    assert (bucket.rate, bucket.burst) == (2.5, 3)
    assert [bucket.allow() for _ in range(4)] == [True, True, True, False]  # starts full
    clock.advance(0.41)  # one token back at 2.5 per second
    assert [bucket.allow() for _ in range(2)] == [True, False]
    assert rate.set("none")
    assert all(bucket.allow() for _ in range(1000))
    rate.reset()  # the static value is None too
    assert rate.set("10")
    assert bucket.burst == 10
    assert sum(bucket.allow() for _ in range(20)) == 10
    assert not rate.set("0")  # refused by the bucket; still 10
    assert bucket.rate == 10.0


def test_a_static_unlimited_bucket_and_infinite_rates() -> None:
    assert all(TokenBucket(None).allow() for _ in range(100))
    bucket = TokenBucket(5.0, burst=None)
    assert bucket.burst == 5
    bucket.configure(rate=math.inf)
    assert all(bucket.allow() for _ in range(100))
    bucket.configure(rate=1.0)
    assert (bucket.burst, bucket.allow(), bucket.allow()) == (1, True, False)
    assert repr(TokenBucket(None)) == "TokenBucket(rate=inf, burst=1)"
