"""rate_limit(): rejecting (the default) and waiting (wait=True), keys, never past the deadline."""

from __future__ import annotations

import asyncio

import pytest

from kitpy import Context, Key
from kitpy.endpoint import endpoint_name, named
from kitpy.errors import DeadlineExceeded, RateLimited
from kitpy.ratelimit import KeyedTokenBuckets, TokenBucket, rate_limit
from kitpy.testing import FakeClock

USER: Key[str] = Key("user")


class Counting:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, ctx: Context, request: int) -> int:
        self.calls += 1
        return request


async def test_rejects_without_calling() -> None:
    clock = FakeClock()
    inner = Counting()
    ep = rate_limit(TokenBucket(rate=1.0, burst=2, clock=clock))(inner)
    assert await ep(Context(), 1) == 1
    assert await ep(Context(), 2) == 2
    with pytest.raises(RateLimited, match="rate limit exceeded"):
        await ep(Context(), 3)
    assert inner.calls == 2
    clock.advance(1.0)
    assert await ep(Context(), 4) == 4


async def test_rejection_is_raised_on_await_not_on_call() -> None:
    ep = rate_limit(TokenBucket(rate=1.0, burst=1, clock=FakeClock()))(Counting())
    await ep(Context(), 1)
    pending = ep(Context(), 2)  # must not raise here (safe inside gather/create_task)
    with pytest.raises(RateLimited):
        await pending


async def test_keyed_rejection() -> None:
    clock = FakeClock()
    inner = Counting()
    ep = rate_limit(
        KeyedTokenBuckets(rate=1.0, burst=1, clock=clock), key=lambda ctx, req: ctx[USER]
    )(inner)
    ada = Context().with_value(USER, "ada")
    bob = Context().with_value(USER, "bob")
    assert await ep(ada, 1) == 1
    with pytest.raises(RateLimited):
        await ep(ada, 2)
    assert await ep(bob, 3) == 3  # bob has his own bucket
    assert inner.calls == 2


async def test_rejection_with_an_async_allower() -> None:
    class Remote:
        def __init__(self) -> None:
            self.keys: list[str] = []

        async def allow(self, key: str, /) -> bool:
            self.keys.append(key)
            await asyncio.sleep(0)
            return len(self.keys) <= 1

    remote = Remote()
    inner = Counting()
    ep = rate_limit(remote, key=lambda ctx, req: f"k{req}")(inner)
    assert await ep(Context(), 1) == 1
    with pytest.raises(RateLimited):
        await ep(Context(), 2)
    assert remote.keys == ["k1", "k2"]
    assert inner.calls == 1


async def test_wait_waits_for_its_turn() -> None:
    clock = FakeClock()
    inner = Counting()
    ep = rate_limit(TokenBucket(rate=10.0, burst=1, clock=clock), wait=True, sleep=clock.sleep)(
        inner
    )
    for i in range(4):
        assert await ep(Context(clock=clock), i) == i
    assert clock.sleeps == pytest.approx([0.1, 0.1, 0.1])
    assert inner.calls == 4


async def test_wait_never_waits_past_the_deadline() -> None:
    clock = FakeClock()
    inner = Counting()
    bucket = TokenBucket(rate=1.0, burst=1, clock=clock)
    ep = rate_limit(bucket, wait=True, sleep=clock.sleep)(inner)
    assert await ep(Context(clock=clock), 1) == 1
    ctx = Context(clock=clock).with_timeout(0.5)  # the next token is 1 s away
    with pytest.raises(DeadlineExceeded, match="outlast the deadline"):
        await ep(ctx, 2)
    assert clock.sleeps == []  # failed at once, no waiting
    assert inner.calls == 1
    # nothing was booked: a caller with time to spare gets the very next token
    assert await ep(Context(clock=clock).with_timeout(2.0), 3) == 3
    assert clock.sleeps == pytest.approx([1.0])


async def test_keyed_wait() -> None:
    clock = FakeClock()
    ep = rate_limit(
        KeyedTokenBuckets(rate=1.0, burst=1, clock=clock),
        wait=True,
        key=lambda ctx, req: str(req % 2),
        sleep=clock.sleep,
    )(Counting())
    for i in range(4):
        await ep(Context(clock=clock), i)
    # key "0" waits 1 s for its second token; key "1" refilled during that wait
    assert clock.sleeps == pytest.approx([1.0])


class WaitingSleep:
    """A real, cancellable sleep for the limiter that tells the test when a wait began."""

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.started.set()
        await asyncio.sleep(delay)

    async def until_waiting(self) -> None:
        async with asyncio.timeout(5):
            await self.started.wait()


async def cancelled(task: asyncio.Future[int]) -> None:
    """Cancel ``task`` (a caller going away) and see the cancellation come out of it."""
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancelled_wait_gives_its_permit_back() -> None:
    clock = FakeClock()  # the bucket's time stands still; the wait itself is a real sleep
    bucket = TokenBucket(rate=0.1, burst=1, clock=clock)
    inner = Counting()
    sleep = WaitingSleep()
    ep = rate_limit(bucket, wait=True, sleep=sleep)(inner)
    assert await ep(Context(clock=clock), 1) == 1  # the burst token
    waiting = asyncio.ensure_future(ep(Context(clock=clock), 2))  # books the next: 10 s away
    await sleep.until_waiting()
    assert bucket.tokens() == pytest.approx(-1.0)
    await cancelled(waiting)
    assert inner.calls == 1
    assert bucket.tokens() == pytest.approx(0.0)  # the booking was given back
    assert bucket.reserve("", None) == pytest.approx(10.0)  # the next caller: 10 s, not 20


async def test_a_cancelled_keyed_wait_refunds_its_own_key_only() -> None:
    clock = FakeClock()
    buckets = KeyedTokenBuckets(rate=0.1, burst=1, clock=clock)
    sleep = WaitingSleep()
    ep = rate_limit(buckets, wait=True, key=lambda ctx, req: ctx[USER], sleep=sleep)(Counting())
    ada = Context(clock=clock).with_value(USER, "ada")
    bob = Context(clock=clock).with_value(USER, "bob")
    await ep(ada, 1)
    await ep(bob, 2)
    waiting = asyncio.ensure_future(ep(ada, 3))
    await sleep.until_waiting()
    await cancelled(waiting)
    assert buckets.bucket("ada").tokens() == pytest.approx(0.0)
    assert buckets.bucket("bob").tokens() == pytest.approx(0.0)  # untouched: it was empty too
    buckets.refund("carol")  # a key the buckets do not know: nothing happens, nothing is made
    assert len(buckets) == 2


async def test_a_waiter_without_refund_still_lets_cancellation_through() -> None:
    class Booking:
        def reserve(self, key: str, max_wait: float | None, /) -> float | None:
            return 60.0

    sleep = WaitingSleep()
    inner = Counting()
    waiting = asyncio.ensure_future(
        rate_limit(Booking(), wait=True, sleep=sleep)(inner)(Context(), 1)
    )
    await sleep.until_waiting()
    await cancelled(waiting)
    assert inner.calls == 0


def test_refund_never_exceeds_the_burst() -> None:
    bucket = TokenBucket(rate=1.0, burst=2, clock=FakeClock())
    bucket.refund()
    assert bucket.tokens() == pytest.approx(2.0)
    assert bucket.allow()
    bucket.refund()
    bucket.refund()
    assert bucket.tokens() == pytest.approx(2.0)


class OnlyAllows:
    def allow(self, key: str, /) -> bool:
        return True


class OnlyReserves:
    def reserve(self, key: str, max_wait: float | None, /) -> float | None:
        return 0.0


def test_a_limiter_that_cannot_serve_the_mode_is_refused_when_built() -> None:
    with pytest.raises(TypeError, match="wait=True"):
        rate_limit(OnlyAllows(), wait=True)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="wait=False"):
        rate_limit(OnlyReserves())  # type: ignore[call-overload]
    rate_limit(OnlyAllows())
    rate_limit(OnlyReserves(), wait=True)


async def test_a_mode_chosen_at_run_time_needs_a_limiter_that_serves_both() -> None:
    clock = FakeClock()
    for wait in (False, True):
        ep = rate_limit(TokenBucket(rate=1.0, burst=1, clock=clock), wait=wait)(Counting())
        assert await ep(Context(clock=clock), 1) == 1


async def test_an_async_waiter_waits_itself_within_the_deadline() -> None:
    class Remote:
        def __init__(self) -> None:
            self.calls: list[tuple[str, float | None]] = []

        async def acquire(self, key: str, max_wait: float | None, /) -> None:
            self.calls.append((key, max_wait))

    clock = FakeClock()
    remote = Remote()
    ep = rate_limit(remote, wait=True, key=lambda ctx, req: f"k{req}")(Counting())
    assert await ep(Context(clock=clock).with_timeout(2.0), 7) == 7
    [(key, max_wait)] = remote.calls
    assert key == "k7"
    assert max_wait == pytest.approx(2.0)


@pytest.mark.parametrize("wait", [False, True])
@pytest.mark.parametrize("keyed", [False, True])
def test_the_wrapped_endpoint_keeps_its_name(wait: bool, keyed: bool) -> None:
    key = (lambda ctx, req: "k") if keyed else None
    ep = rate_limit(TokenBucket(rate=1.0, burst=1), wait=wait, key=key)(named("op")(Counting()))
    assert endpoint_name(ep) == "op"


def test_an_async_allower_keeps_the_name_too() -> None:
    class Remote:
        async def allow(self, key: str, /) -> bool:
            return True

    assert endpoint_name(rate_limit(Remote())(named("op")(Counting()))) == "op"
