"""stringsvc's live settings against a real etcd, changed with the real ``etcdctl``.

The process runs with ``--config-etcd``; ``etcdctl put`` / ``del`` on its
``rate_limit`` and ``log_level`` keys change what it does within a second, a
value that does not fit is logged and ignored, and nothing restarts.  Every
wait is bounded.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import uuid
from collections.abc import Awaitable, Callable

import aiohttp

from examples.stringsvc.tests.running import RunningService, running_service
from tests.conftest import Etcd
from tests.servers import require_binary

_ids = itertools.count()


async def etcdctl(etcd: Etcd, *args: str) -> None:
    """Run ``etcdctl`` (API v3) against ``etcd``; fail on a non-zero exit."""
    binary = require_binary("etcdctl", "etcd-client")
    proc = await asyncio.create_subprocess_exec(
        binary, f"--endpoints={etcd.url}", *args,
        env={**os.environ, "ETCDCTL_API": "3"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    async with asyncio.timeout(20):
        out, _ = await proc.communicate()
    assert proc.returncode == 0, f"etcdctl {' '.join(args)}: {out.decode()}"


async def burst(session: aiohttp.ClientSession, svc: RunningService, n: int) -> list[int]:
    """``n`` requests one after another, Uppercase and Count in turn: their HTTP statuses."""
    statuses = []
    for i in range(n):
        route = "uppercase" if i % 2 == 0 else "count"
        async with session.post(f"{svc.http_url}/{route}", json={"s": "x"}) as response:
            statuses.append(response.status)
    return statuses


async def poll(check: Callable[[], Awaitable[bool]], *, within: float, pause: float = 0.05) -> None:
    """Await ``check()`` until it returns True; fail after ``within`` seconds."""
    async with asyncio.timeout(within):
        while True:
            if await check():
                return
            await asyncio.sleep(pause)


FIVE_THEN_LIMITED = [200] * 5 + [429]


async def test_rate_limit_and_log_level_follow_etcd(etcd_server: Etcd) -> None:
    require_binary("etcdctl", "etcd-client")
    prefix = f"/kitpy-test/{uuid.uuid4().hex}/"
    key = prefix + "rate_limit"
    async with (
        running_service("--config-etcd", etcd_server.url, "--config-prefix", prefix) as svc,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
    ):
        svc.keep_reading()
        assert await burst(session, svc, 20) == [200] * 20  # no rate_limit anywhere: unlimited

        await etcdctl(etcd_server, "put", key, "5")
        await limited_to_five(session, svc)

        mark = len(svc.lines)
        await etcdctl(etcd_server, "put", key, "banana")
        rejected = await svc.wait_for_line(
            lambda line: "rate_limit" in line and "banana" in line, start=mark, within=3
        )
        assert rejected is not None, "no log line about the rejected value"
        entry = json.loads(rejected)
        assert (entry["level"], entry["setting"], entry["value"]) == (
            "error",
            "rate_limit",
            "banana",
        )
        await asyncio.sleep(1.05)  # the bucket refills: a fresh second
        assert await burst(session, svc, 6) == FIVE_THEN_LIMITED  # still 5

        await etcdctl(etcd_server, "del", key)

        async def unlimited() -> bool:
            return await burst(session, svc, 20) == [200] * 20

        await poll(unlimited, within=3, pause=0.2)

        # The log level: at warning a successful call's info line is gone; at debug it is back.
        await etcdctl(etcd_server, "put", prefix + "log_level", "warning")
        await poll(lambda: call_is_logged(session, svc, expect=False), within=5)
        await etcdctl(etcd_server, "put", prefix + "log_level", "debug")
        await poll(lambda: call_is_logged(session, svc, expect=True), within=5)
        changed = [json.loads(line) for line in svc.lines if '"live setting changed"' in line]
        assert {"setting": "log_level", "value": "debug"}.items() <= changed[-1].items()
        assert await svc.stop() == 0


async def limited_to_five(session: aiohttp.ClientSession, svc: RunningService) -> None:
    """Wait (at most 3 s) until a burst of 6 requests gets exactly 5 OK and one 429."""
    async with asyncio.timeout(3):
        while True:
            statuses = await burst(session, svc, 6)
            if statuses == FIVE_THEN_LIMITED:
                return
            # Not limited yet: ask again soon.  Limited, but the burst began before the
            # change reached the service: wait for a fresh second, a full bucket.
            await asyncio.sleep(1.05 if 429 in statuses else 0.05)


async def call_is_logged(
    session: aiohttp.ClientSession, svc: RunningService, *, expect: bool
) -> bool:
    """Make one call with a fresh request id; True when its log line shows up as ``expect``s."""
    request_id = f"probe-{next(_ids)}"
    mark = len(svc.lines)
    headers = {"X-Request-Id": request_id}
    async with session.post(f"{svc.http_url}/count", json={"s": "x"}, headers=headers) as r:
        assert r.status == 200
    line = await svc.wait_for_line(
        lambda text: request_id in text, start=mark, within=0.5 if not expect else 2
    )
    return (line is not None) == expect
