"""etcd killed and restarted mid-run, while an instance faults, under continuous load.

The proxy of :mod:`tests.faults.stack` follows instances registered in a real
etcd (EtcdRegistrar -> EtcdInstancer -> Endpointer).  While requests flow
without pause: etcd is SIGKILLed (the proxy notices, keeps its last instance
set and keeps serving), one instance starts resetting every connection while
etcd is down (the breaker and P2C route around it), etcd comes back (the
instancer recovers), a new instance registers and the faulty one deregisters
(the proxy follows both).  Bounds: at least 97 % of all requests succeed, every
failure is a correctly coded 503/504, none is answered more than 0.25 s past
its deadline, the upstreams see at most ``(1 + ratio) * requests + floor``
attempts, and once the set has settled 100 % of a window succeed.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable

import pytest

from kitpy.sd import Instance
from kitpy.sd.etcd import EtcdClient, EtcdInstancer, EtcdRegistrar
from tests.conftest import Etcd

from .stack import (
    Outcome,
    ProxyStack,
    StackConfig,
    check_deadlines,
    check_failures_are_coded,
    drive,
    proxy_stack,
    success_rate,
)
from .upstream import Fault, FaultyUpstream

pytestmark = pytest.mark.servers

CONFIG = StackConfig()
DEADLINE = 2.0
MARGIN = 0.25
BOUND = 0.97


def ignore(instance: Instance | None, error: BaseException) -> None:
    """Errors while etcd is down are expected; the assertions look at the traffic."""


class Load:
    """Requests in batches through the proxy, without pause, until stopped (at most 60 s)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.outcomes: list[Outcome] = []
        self._stop = asyncio.Event()
        self._batch = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async with asyncio.timeout(60):
            while not self._stop.is_set():
                self.outcomes += await drive(
                    self.url, 16, concurrency=4, deadline=DEADLINE, start=len(self.outcomes)
                )
                self._batch.set()
                self._batch = asyncio.Event()

    def served(self, since: int = 0) -> Counter[str]:
        return Counter(o.by for o in self.outcomes[since:] if o.by is not None)

    async def until(self, done: Callable[[], bool], within: float = 15.0) -> None:
        """Wait (at most ``within`` seconds) until ``done()`` holds after a batch."""
        async with asyncio.timeout(within):
            while not done():
                await self._batch.wait()

    async def stop(self) -> None:
        self._stop.set()
        async with asyncio.timeout(DEADLINE * 20):
            await self._task


@pytest.fixture
async def upstreams() -> AsyncIterator[dict[str, FaultyUpstream]]:
    group = {name: FaultyUpstream(name) for name in "abcd"}
    for upstream in group.values():
        await upstream.start()
    try:
        yield group
    finally:
        for upstream in group.values():
            await upstream.stop()


async def test_etcd_restart_mid_run_with_a_faulty_instance(
    etcd_server: Etcd, upstreams: dict[str, FaultyUpstream]
) -> None:
    prefix = f"/kitpy-faults/{uuid.uuid4().hex}/"
    async with EtcdClient(etcd_server.url, timeout=1.0) as etcd:
        registrars = {
            name: EtcdRegistrar(
                etcd, prefix, Instance(u.address, metadata={"name": name}), ttl=5, on_error=ignore
            )
            for name, u in upstreams.items()
        }
        for name in "abc":
            await registrars[name].register()
        instancer = EtcdInstancer(etcd, prefix, min_backoff=0.05, max_backoff=0.5, on_error=ignore)
        try:
            async with instancer, proxy_stack(instancer, CONFIG) as stack:
                await run(etcd_server, upstreams, registrars, stack)
        finally:
            for registrar in registrars.values():
                with contextlib.suppress(Exception):
                    await registrar.deregister()


async def run(
    etcd_server: Etcd,
    upstreams: dict[str, FaultyUpstream],
    registrars: dict[str, EtcdRegistrar],
    stack: ProxyStack,
) -> None:
    endpointer = stack.endpointer

    def live() -> set[str]:
        return {i.metadata["name"] for i in endpointer.instances}

    async with asyncio.timeout(10):
        await endpointer.wait_for(lambda _: live() == {"a", "b", "c"})
    load = Load(stack.url)
    try:
        await load.until(lambda: all(load.served()[n] >= 5 for n in "abc"))

        # etcd dies: the proxy notices, keeps the last set, keeps serving ...
        await asyncio.to_thread(etcd_server.server.stop, kill=True)
        async with asyncio.timeout(10):
            await endpointer.wait_for(lambda _: endpointer.error is not None)
        # ... while instance "a" starts resetting every connection
        upstreams["a"].inject(Fault.RESET)
        mark = len(load.outcomes)
        await load.until(lambda: len(load.outcomes) >= mark + 160)
        assert live() == {"a", "b", "c"}
        assert upstreams["a"].spoiled[Fault.RESET] > 0

        # etcd comes back: the instancer recovers and follows changes again
        await asyncio.to_thread(etcd_server.server.start)
        async with asyncio.timeout(20):
            await endpointer.wait_for(lambda _: endpointer.error is None)
        await registrars["d"].register()
        await registrars["a"].deregister()
        async with asyncio.timeout(10):
            await endpointer.wait_for(lambda _: live() == {"b", "c", "d"})
        settled = len(load.outcomes)
        a_seen = upstreams["a"].received
        await load.until(lambda: load.served(settled)["d"] >= 20)
    finally:
        await load.stop()

    window = load.outcomes[settled:]
    assert success_rate(window) == 1.0, Counter(o.code for o in window)
    assert set(load.served(settled)) <= {"b", "c", "d"}
    # requests already on their way to "a" when it left may still land there, no new ones
    assert upstreams["a"].received - a_seen <= 4 * CONFIG.max_attempts

    outcomes = load.outcomes
    rate = success_rate(outcomes)
    assert rate >= BOUND, (rate, Counter(o.code for o in outcomes))
    check_failures_are_coded(outcomes)
    check_deadlines(stack, outcomes, MARGIN)
    attempts = sum(u.received for u in upstreams.values())
    assert attempts <= (1 + CONFIG.budget_ratio) * len(outcomes) + CONFIG.budget_floor
