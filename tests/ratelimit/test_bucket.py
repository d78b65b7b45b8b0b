"""TokenBucket and KeyedTokenBuckets on virtual time."""

from __future__ import annotations

import pytest

from kitpy.ratelimit import KeyedTokenBuckets, TokenBucket
from kitpy.testing import FakeClock


def test_burst_then_refill_at_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.allow() for _ in range(4)] == [True, True, True, False]
    clock.advance(0.49)
    assert not bucket.allow()
    clock.advance(0.01)
    assert bucket.allow()
    clock.advance(100.0)  # never more than the burst
    assert bucket.tokens() == pytest.approx(3.0)
    assert [bucket.allow() for _ in range(4)] == [True, True, True, False]
    assert (bucket.rate, bucket.burst) == (2.0, 3)
    assert repr(bucket) == "TokenBucket(rate=2, burst=3)"


def test_reserve_books_the_next_token_and_respects_max_wait() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10.0, burst=1, clock=clock)
    assert bucket.reserve("", None) == 0.0
    assert bucket.reserve("", 1.0) == pytest.approx(0.1)
    assert bucket.reserve("", 1.0) == pytest.approx(0.2)  # queued behind the first booking
    assert bucket.reserve("", 0.25) is None  # would need 0.3 s: nothing booked
    assert bucket.reserve("", 0.3) is None  # reaching max_wait is not allowed either
    assert bucket.reserve("", 0.31) == pytest.approx(0.3)
    assert not bucket.allow()  # in debt
    clock.advance(0.39)  # the three bookings are paid off at 0.3 s, a free token at 0.4 s
    assert not bucket.allow()
    clock.advance(0.02)
    assert bucket.allow()


def test_validation() -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate=0)
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(rate=1, burst=0)
    with pytest.raises(ValueError, match="max_keys"):
        KeyedTokenBuckets(rate=1, max_keys=0)
    with pytest.raises(ValueError, match="rate"):
        KeyedTokenBuckets(rate=-1)


def test_keyed_buckets_are_independent_and_bounded_lru() -> None:
    clock = FakeClock()
    buckets = KeyedTokenBuckets(rate=1.0, burst=1, max_keys=2, clock=clock)
    assert buckets.allow("a")
    assert not buckets.allow("a")
    assert buckets.allow("b")
    assert not buckets.allow("a")  # touches a: b is now least recently used
    assert buckets.allow("c")  # evicts b
    assert len(buckets) == 2
    assert buckets.allow("b")  # b was forgotten: a fresh, full bucket (evicts a)
    assert buckets.allow("a")
    assert len(buckets) == 2
    assert buckets.reserve("z", None) == 0.0
    assert buckets.reserve("z", 2.0) == pytest.approx(1.0)
