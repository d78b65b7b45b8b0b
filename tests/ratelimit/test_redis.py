"""The Redis-shared limiter on a real redis-server: shared by processes, fails open or closed."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from pathlib import Path

import pytest

from kitpy import Context, Endpoint
from kitpy.errors import DeadlineExceeded, RateLimited
from kitpy.ratelimit import rate_limit
from kitpy.ratelimit.distributed import RedisRateLimiter
from tests.servers import ServerProcess, free_port

pytestmark = pytest.mark.servers

ROOT = Path(__file__).resolve().parents[2]


def url_of(server: ServerProcess) -> str:
    return f"redis://127.0.0.1:{server.port}/0"


def recording() -> tuple[list[int], Endpoint[int, int]]:
    """An endpoint that echoes its request, and the list of requests it was called with."""
    calls: list[int] = []

    async def work(ctx: Context, request: int) -> int:
        calls.append(request)
        return request

    return calls, work


async def run_worker(url: str, limit: str, namespace: str, strategy: str, n: int) -> int:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.ratelimit.redis_worker",
        url,
        limit,
        namespace,
        strategy,
        str(n),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, err.decode()
    return int(out.decode().strip().splitlines()[-1])


@pytest.mark.parametrize("strategy", ["moving-window", "fixed-window", "sliding-window"])
async def test_three_processes_share_one_limit_exactly(
    redis_server: ServerProcess, strategy: str
) -> None:
    namespace = f"test-{uuid.uuid4().hex}"
    counts = await asyncio.gather(
        *(run_worker(url_of(redis_server), "25/hour", namespace, strategy, 15) for _ in range(3))
    )
    assert sum(counts) == 25  # 45 attempts, exactly the limit admitted in total
    assert all(c <= 15 for c in counts)


async def test_in_process_limit_remaining_and_clear(redis_server: ServerProcess) -> None:
    limiter = RedisRateLimiter.from_url(
        url_of(redis_server), "3/minute", namespace=f"t-{uuid.uuid4().hex}"
    )
    try:
        calls = 0

        async def work(ctx: Context, request: str) -> str:
            nonlocal calls
            calls += 1
            return request

        ep = rate_limit(limiter, key=lambda ctx, req: req)(work)
        for _ in range(3):
            await ep(Context(), "ada")
        with pytest.raises(RateLimited):
            await ep(Context(), "ada")
        assert await ep(Context(), "bob") == "bob"  # per-key limits
        assert calls == 4
        assert await limiter.remaining("ada") == 0
        assert await limiter.remaining("bob") == 2
        await limiter.clear("ada")
        assert await limiter.remaining("ada") == 3
    finally:
        await limiter.aclose()


@pytest.mark.parametrize(("fail_open", "admitted"), [(True, 5), (False, 0)])
async def test_unreachable_redis_fails_open_or_closed(fail_open: bool, admitted: int) -> None:
    errors: list[BaseException] = []
    limiter = RedisRateLimiter.from_url(
        f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        "1/minute",
        fail_open=fail_open,
        on_error=errors.append,
        timeout=1.0,
    )
    assert limiter.fail_open is fail_open
    calls = 0

    async def work(ctx: Context, request: int) -> int:
        nonlocal calls
        calls += 1
        return request

    ep = rate_limit(limiter)(work)
    try:
        async with asyncio.timeout(10):
            for i in range(5):
                if fail_open:
                    assert await ep(Context(), i) == i
                else:
                    with pytest.raises(RateLimited):
                        await ep(Context(), i)
    finally:
        await limiter.aclose()
    assert calls == admitted
    assert len(errors) == 5


async def test_delaying_mode_waits_for_the_shared_window_and_keeps_the_limit(
    redis_server: ServerProcess,
) -> None:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await asyncio.sleep(seconds)

    limiter = RedisRateLimiter.from_url(
        url_of(redis_server), "2/second", namespace=f"d-{uuid.uuid4().hex}", sleep=sleep
    )
    admitted: list[float] = []

    async def work(ctx: Context, request: int) -> int:
        admitted.append(time.time())
        return request

    ep = rate_limit(limiter, wait=True)(work)
    try:
        async with asyncio.timeout(20):
            results = await asyncio.gather(*(ep(Context().with_timeout(10.0), i) for i in range(5)))
    finally:
        await limiter.aclose()
    assert sorted(results) == [0, 1, 2, 3, 4]  # every caller got through: none refused
    assert sleeps  # some waited for the window instead of being rejected
    admitted.sort()
    for earlier, later in zip(admitted, admitted[2:], strict=False):
        assert later - earlier >= 0.8  # never 3 calls inside one second (less loop lag)


async def test_delaying_mode_fails_at_once_when_the_wait_would_outlast_the_deadline(
    redis_server: ServerProcess,
) -> None:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    limiter = RedisRateLimiter.from_url(
        url_of(redis_server), "1/minute", namespace=f"d-{uuid.uuid4().hex}", sleep=sleep
    )
    calls, work = recording()
    ep = rate_limit(limiter, wait=True)(work)
    try:
        assert await ep(Context().with_timeout(5.0), 1) == 1
        with pytest.raises(DeadlineExceeded, match="outlast the deadline"):
            await ep(Context().with_timeout(5.0), 2)  # the next permit is ~60 s away
        assert await limiter.remaining() == 0  # the refused call took nothing
    finally:
        await limiter.aclose()
    assert calls == [1]
    assert sleeps == []


@pytest.mark.parametrize("fail_open", [True, False])
async def test_delaying_mode_with_redis_unreachable(fail_open: bool) -> None:
    errors: list[BaseException] = []
    limiter = RedisRateLimiter.from_url(
        f"redis://127.0.0.1:{free_port()}/0",
        "1/minute",
        fail_open=fail_open,
        on_error=errors.append,
        timeout=1.0,
    )
    calls, work = recording()
    ep = rate_limit(limiter, wait=True)(work)
    try:
        async with asyncio.timeout(10):
            if fail_open:
                assert await ep(Context().with_timeout(5.0), 1) == 1
            else:
                with pytest.raises(RateLimited, match="storage error"):
                    await ep(Context().with_timeout(5.0), 1)
    finally:
        await limiter.aclose()
    assert calls == ([1] if fail_open else [])
    assert len(errors) == 1


def test_validation() -> None:
    with pytest.raises(ValueError, match="strategy"):
        RedisRateLimiter.from_url("redis://127.0.0.1:1", "1/second", strategy="nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        RedisRateLimiter.from_url("redis://127.0.0.1:1", "1/second", timeout=0)
