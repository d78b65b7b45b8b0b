"""Live settings from a real etcd: change, invalid change, delete, and an etcd restart."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from kitpy.config import Live, Rejection
from kitpy.config.etcd import EtcdSettings
from kitpy.sd.etcd import EtcdClient
from tests.conftest import Etcd


async def _until(condition: Callable[[], bool], *, within: float = 10.0) -> None:
    for _ in range(int(within / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not true within {within} s")


def _positive(value: float | None) -> None:
    if value is not None and value <= 0:
        raise ValueError("must be > 0")


async def test_live_settings_follow_etcd_through_changes_rejections_deletes_and_a_restart(
    etcd_server: Etcd,
) -> None:
    prefix = f"/kitpy-test/{uuid.uuid4().hex}/config/"
    rejected: list[Rejection] = []
    problems: list[str] = []
    rate: Live[float | None] = Live(
        None, name="rate_limit", type=float | None, check=_positive, on_reject=rejected.append
    )
    burst = Live(10, name="burst", on_reject=rejected.append)
    settings: dict[str, Live[Any]] = {"rate_limit": rate, "burst": burst}
    async with EtcdClient(etcd_server.url, timeout=2.0) as etcd:
        await etcd.put(f"{prefix}burst".encode(), b"20")  # there before we start: read first
        watcher = EtcdSettings(
            etcd, prefix=prefix, settings=settings, min_backoff=0.05, max_backoff=0.5,
            on_problem=problems.append,
        )  # fmt: skip
        async with watcher:
            async with asyncio.timeout(10):
                await watcher.synced.wait()
            assert (rate.value, burst.value) == (None, 20)

            await etcd.put(f"{prefix}rate_limit".encode(), b"5")
            await _until(lambda: rate.value == 5.0)

            await etcd.put(f"{prefix}rate_limit".encode(), b"banana")
            await _until(lambda: len(rejected) == 1)
            assert rate.value == 5.0
            assert str(rejected[0]) == (
                f"live setting rate_limit: rejected 'banana' from etcd key {prefix}rate_limit: "
                "expected a number, got 'banana'"
            )

            await etcd.put(f"{prefix}colour".encode(), b"blue")
            await _until(lambda: any("colour is not a live setting" in p for p in problems))

            await etcd.delete(f"{prefix}rate_limit".encode())
            await _until(lambda: rate.value is None)

            await asyncio.to_thread(etcd_server.server.stop, kill=True)
            await _until(lambda: not watcher.synced.is_set())
            assert burst.value == 20  # etcd gone: the settings keep their values
            await asyncio.to_thread(etcd_server.server.start)
            await _until(watcher.synced.is_set)
            await etcd.put(f"{prefix}rate_limit".encode(), b"7")
            await _until(lambda: rate.value == 7.0)
            assert burst.value == 20
            assert any("keeping current values" in p for p in problems)
