"""retry(): attempts, classifier, backoff with full jitter, the deadline, the budget, RetryError."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kitpy import Context
from kitpy.errors import Code, Internal, KitError, NotFound, Unavailable
from kitpy.resilience import RetryBudget, RetryError, retry
from kitpy.testing import FakeClock


class Flaky:
    """An endpoint that fails with the given errors in turn, then answers "ok"."""

    def __init__(self, *errors: BaseException, clock: FakeClock | None = None) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.clock = clock
        self.starts: list[float] = []

    async def __call__(self, ctx: Context, request: str) -> str:
        self.calls += 1
        if self.clock is not None:
            self.starts.append(self.clock())
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def unlimited(clock: FakeClock) -> RetryBudget:
    return RetryBudget(ratio=1.0, min_per_second=1000.0, clock=clock)


async def test_retries_retryable_errors_until_success() -> None:
    clock = FakeClock()
    upstream = Flaky(Unavailable("down"), ConnectionResetError(), clock=clock)
    ep = retry(max_attempts=3, clock=clock, sleep=clock.sleep, budget=unlimited(clock))(upstream)
    assert await ep(Context(clock=clock), "x") == "ok"
    assert upstream.calls == 3
    assert len(clock.sleeps) == 2


async def test_gives_up_after_max_attempts_with_every_error() -> None:
    clock = FakeClock()
    errors = [Unavailable("a"), Unavailable("b"), Unavailable("c"), Unavailable("d")]
    upstream = Flaky(*errors, clock=clock)
    ep = retry(max_attempts=3, clock=clock, sleep=clock.sleep, budget=unlimited(clock))(upstream)
    with pytest.raises(RetryError) as info:
        await ep(Context(clock=clock), "x")
    err = info.value
    assert upstream.calls == 3
    assert err.errors == tuple(errors[:3])
    assert err.last is errors[2]
    assert err.__cause__ is errors[2]
    assert err.code is Code.UNAVAILABLE
    assert isinstance(err, KitError)
    assert "3 attempts failed; last: c" in err.message


@pytest.mark.parametrize("exc", [NotFound("nope"), Internal("bug"), ValueError("x")])
async def test_does_not_retry_what_the_classifier_refuses(exc: Exception) -> None:
    clock = FakeClock()
    upstream = Flaky(exc, clock=clock)
    ep = retry(max_attempts=5, clock=clock, sleep=clock.sleep, budget=unlimited(clock))(upstream)
    with pytest.raises(RetryError) as info:
        await ep(Context(clock=clock), "x")
    assert upstream.calls == 1
    assert info.value.errors == (exc,)
    expected = exc.code if isinstance(exc, KitError) else Code.UNKNOWN
    assert info.value.code is expected
    if not isinstance(exc, KitError):
        assert "x" not in info.value.message  # a crash's text never becomes the message


async def test_custom_classifier_and_headers_kept() -> None:
    clock = FakeClock()
    last = Internal("bug", headers={"Retry-After": "3"})
    upstream = Flaky(Internal("bug"), last, clock=clock)
    ep = retry(
        max_attempts=2,
        classifier=lambda e: isinstance(e, Internal),
        clock=clock,
        sleep=clock.sleep,
        budget=unlimited(clock),
    )(upstream)
    with pytest.raises(RetryError) as info:
        await ep(Context(clock=clock), "x")
    assert upstream.calls == 2
    assert info.value.headers == {"Retry-After": "3"}


async def test_backoff_is_exponential_with_full_jitter() -> None:
    clock = FakeClock()
    upstream = Flaky(*[Unavailable() for _ in range(10)], clock=clock)
    ep = retry(
        max_attempts=6,
        base_delay=0.1,
        max_delay=0.5,
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(7),
        budget=unlimited(clock),
    )(upstream)
    with pytest.raises(RetryError):
        await ep(Context(clock=clock), "x")
    caps = [0.1, 0.2, 0.4, 0.5, 0.5]
    assert len(clock.sleeps) == 5
    for slept, cap in zip(clock.sleeps, caps, strict=True):
        assert 0.0 <= slept <= cap
    # full jitter: with a fixed seed the delays are not simply the caps
    assert clock.sleeps != caps


async def test_never_sleeps_past_the_deadline() -> None:
    clock = FakeClock()
    upstream = Flaky(*[Unavailable() for _ in range(10)], clock=clock)
    ep = retry(
        max_attempts=10,
        base_delay=1.0,
        max_delay=1.0,
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(1),
        budget=unlimited(clock),
    )(upstream)
    ctx = Context(clock=clock).with_timeout(1.5)
    assert ctx.deadline is not None
    with pytest.raises(RetryError):
        await ep(ctx, "x")
    assert clock() < ctx.deadline
    assert all(start < ctx.deadline for start in upstream.starts)
    assert upstream.calls < 10


async def test_expired_context_gets_one_attempt_and_no_sleep() -> None:
    clock = FakeClock()
    upstream = Flaky(Unavailable(), clock=clock)
    ctx = Context(clock=clock).with_timeout(0.5)
    clock.advance(1.0)
    ep = retry(max_attempts=3, clock=clock, sleep=clock.sleep, budget=unlimited(clock))(upstream)
    with pytest.raises(RetryError):
        await ep(ctx, "x")
    assert upstream.calls == 1
    assert clock.sleeps == []


async def test_cancellation_propagates_and_is_not_retried() -> None:
    started = asyncio.Event()
    calls = 0

    async def hang(ctx: Context, request: str) -> str:
        nonlocal calls
        calls += 1
        started.set()
        await asyncio.Event().wait()
        return "never"

    ep = retry(max_attempts=3)(hang)
    task = asyncio.ensure_future(ep(Context(), "x"))
    async with asyncio.timeout(5):
        await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(5):
            await task
    assert calls == 1


@pytest.mark.parametrize(("ratio", "min_per_second"), [(0.2, 0.0), (0.1, 1.0)])
async def test_budget_caps_total_attempts_under_total_failure(
    ratio: float, min_per_second: float
) -> None:
    clock = FakeClock()
    window = 10.0
    budget = RetryBudget(ratio=ratio, min_per_second=min_per_second, window=window, clock=clock)
    calls = 0

    async def always_down(ctx: Context, request: int) -> int:
        nonlocal calls
        calls += 1
        raise Unavailable("down")

    ep = retry(max_attempts=3, base_delay=0.0, budget=budget, clock=clock, sleep=clock.sleep)(
        always_down
    )
    requests = 200
    for i in range(requests):
        with pytest.raises(RetryError):
            await ep(Context(clock=clock), i)
    floor = min_per_second * window
    cap = (1 + ratio) * requests + floor
    assert calls <= cap
    # the budget is used up to its cap, not far below it (no retries are lost)
    assert calls >= cap - 1
    assert calls < 3 * requests  # without a budget there would be 600


async def test_default_budget_is_per_middleware_and_bounded() -> None:
    clock = FakeClock()
    calls = 0

    async def always_down(ctx: Context, request: int) -> int:
        nonlocal calls
        calls += 1
        raise Unavailable("down")

    ep = retry(max_attempts=5, base_delay=0.0, clock=clock, sleep=clock.sleep)(always_down)
    for i in range(1000):
        with pytest.raises(RetryError):
            await ep(Context(clock=clock), i)
    # default: 20 % of requests + 10/s over 10 s
    assert calls <= 1000 * 1.2 + 100


def test_validates_arguments() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        retry(max_attempts=0)
    with pytest.raises(ValueError, match="delays"):
        retry(base_delay=-1)


@settings(max_examples=150, deadline=None)
@given(
    latencies=st.lists(st.floats(min_value=0.0, max_value=0.5), min_size=1, max_size=12),
    timeout=st.floats(min_value=0.01, max_value=2.0),
    base_delay=st.floats(min_value=0.0, max_value=0.5),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_property_retry_never_sleeps_or_attempts_past_the_deadline(
    latencies: list[float], timeout: float, base_delay: float, seed: int
) -> None:
    clock = FakeClock()
    starts: list[float] = []
    ends: list[float] = []
    queue = list(latencies)

    async def slow_failing(ctx: Context, request: int) -> int:
        starts.append(clock())
        clock.advance(queue.pop(0) if queue else 0.0)
        ends.append(clock())
        raise Unavailable("down")

    ep = retry(
        max_attempts=len(latencies) + 1,
        base_delay=base_delay,
        max_delay=1.0,
        budget=RetryBudget(ratio=10.0, min_per_second=100.0, clock=clock),
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(seed),
    )(slow_failing)
    ctx = Context(clock=clock).with_timeout(timeout)
    deadline = ctx.deadline
    assert deadline is not None

    async def run() -> None:
        with pytest.raises(RetryError):
            await ep(ctx, 1)

    asyncio.run(run())
    assert starts[0] < deadline
    # every retry starts before the deadline, and no sleep ran into it
    for start in starts[1:]:
        assert start < deadline
    sleep_ends = [end + slept for end, slept in zip(ends, clock.sleeps, strict=False)]
    assert all(t < deadline for t in sleep_ends)
