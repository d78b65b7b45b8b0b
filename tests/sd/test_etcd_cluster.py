"""The proxying pattern for real: instances in their own processes, registered in etcd.

A proxy follows them through EtcdInstancer -> Endpointer (one kitpy HTTP client
per instance) -> P2C -> lb_retry while traffic flows without pause.  One
instance is SIGKILLed (its lease expires), one stops gracefully (deregisters
at once), etcd itself is killed and restarted; no request may fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from kitpy import Context
from kitpy.sd import P2C, Endpointer, lb_retry
from kitpy.sd.etcd import EtcdClient, EtcdInstancer

from .conftest import Etcd
from .upper import Upper, Uppered, http_factory

pytestmark = pytest.mark.servers

ROOT = Path(__file__).resolve().parents[2]
TTL = 2


class Instances:
    """Starts ``tests.sd.instance_app`` processes and cleans them up."""

    def __init__(self, etcd_url: str, prefix: str, logdir: Path) -> None:
        self.etcd_url, self.prefix, self.logdir = etcd_url, prefix, logdir
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.addresses: dict[str, str] = {}

    async def start(self, *names: str) -> None:
        async def one(name: str) -> None:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.sd.instance_app",
                self.etcd_url,
                self.prefix,
                name,
                str(TTL),
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
                stderr=(self.logdir / f"{name}.log").open("ab"),
            )
            self.procs[name] = proc
            assert proc.stdout is not None
            async with asyncio.timeout(20):
                line = (await proc.stdout.readline()).decode()
            assert line.startswith("READY "), f"{name} did not start: {line!r}"
            self.addresses[name] = line.split()[1]

        await asyncio.gather(*(one(name) for name in names))

    async def stop(self, name: str, sig: signal.Signals) -> None:
        proc = self.procs[name]
        proc.send_signal(sig)
        async with asyncio.timeout(10):
            await proc.wait()

    async def close(self) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.kill()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        await proc.wait()


@pytest.fixture
async def instances(etcd_server: Etcd, tmp_path: Path) -> AsyncIterator[Instances]:
    group = Instances(etcd_server.url, f"/kitpy-test/{uuid.uuid4().hex}/stringsvc/", tmp_path)
    try:
        yield group
    finally:
        await group.close()


class Traffic:
    """Workers calling the proxy endpoint non-stop; every failure is kept."""

    def __init__(self, endpoint: object, workers: int = 4) -> None:
        self.endpoint = endpoint
        self.served: Counter[str] = Counter()
        self.failures: list[BaseException] = []
        self._tick = asyncio.Event()
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(self._work(w)) for w in range(workers)]

    async def _work(self, w: int) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            try:
                reply: Uppered = await self.endpoint(  # type: ignore[operator]
                    Context().with_timeout(3.0), Upper(s=f"w{w}-{n}")
                )
                assert reply.v == f"W{w}-{n}"
                self.served[reply.by] += 1
                self._tick.set()
                self._tick = asyncio.Event()
            except Exception as exc:
                self.failures.append(exc)
            await asyncio.sleep(0.005)

    async def served_by(self, name: str, at_least: int = 5) -> None:
        start = self.served[name]
        async with asyncio.timeout(15):
            while self.served[name] < start + at_least:
                await self._tick.wait()

    async def stop(self) -> None:
        self._stop.set()
        async with asyncio.timeout(10):
            await asyncio.gather(*self._tasks)


async def test_proxy_follows_instances_through_crash_drain_and_etcd_restart(
    etcd_server: Etcd, instances: Instances
) -> None:
    await instances.start("a", "b", "c")
    async with (
        aiohttp.ClientSession() as session,
        EtcdClient(etcd_server.url, timeout=2.0) as etcd,
    ):
        instancer = EtcdInstancer(etcd, instances.prefix, max_backoff=0.5)
        endpointer = Endpointer(instancer, http_factory(session), on_error=lambda i, e: None)
        proxy = lb_retry(P2C(endpointer, rng=random.Random(7)), max_attempts=4, base_delay=0.01)

        def live() -> set[str]:
            return {i.metadata["name"] for i in endpointer.instances}

        async def until(names: set[str], within: float = 15) -> None:
            async with asyncio.timeout(within):
                await endpointer.wait_for(lambda _: live() == names)

        async with instancer, endpointer:
            await until({"a", "b", "c"})  # the proxy sees all three
            traffic = Traffic(proxy)
            try:
                for name in ("a", "b", "c"):
                    await traffic.served_by(name)

                await instances.stop("a", signal.SIGKILL)  # crash: the lease runs out
                await until({"b", "c"}, within=TTL + 8)

                await instances.stop("b", signal.SIGTERM)  # drain: deregisters first
                _, kvs = await etcd.range_prefix(instances.prefix.encode())
                assert [kv.key.decode().rsplit("/", 1)[1] for kv in kvs] == [
                    instances.addresses["c"]
                ]  # gone the moment it exited, long before its TTL
                await until({"c"})
                await traffic.served_by("c")

                # etcd itself crashes: the proxy notices, keeps its last set, keeps serving
                await asyncio.to_thread(etcd_server.server.stop, kill=True)
                async with asyncio.timeout(10):
                    await endpointer.wait_for(lambda _: endpointer.error is not None)
                await traffic.served_by("c", at_least=20)
                assert live() == {"c"}

                await asyncio.to_thread(etcd_server.server.start)  # ... and comes back
                await instances.start("d")  # registered after the restart
                await until({"c", "d"})  # the instancer recovered
                await traffic.served_by("d")
                await traffic.served_by("c")
            finally:
                await traffic.stop()

    assert traffic.failures == [], traffic.failures[:5]
    assert set(traffic.served) == {"a", "b", "c", "d"}
