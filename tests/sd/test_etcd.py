"""The etcd backend against a real etcd: gateway client, registrar, instancer."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator

import pytest

from kitpy import NotFound, Unavailable
from kitpy.sd import Endpointer, Instance
from kitpy.sd.etcd import EtcdClient, EtcdInstancer, EtcdRegistrar, KeyValue, prefix_end
from tests.servers import free_port

from .conftest import Etcd

pytestmark = pytest.mark.servers


@pytest.fixture
async def etcd(etcd_server: Etcd) -> AsyncIterator[EtcdClient]:
    async with EtcdClient(etcd_server.url, timeout=3.0) as client:
        yield client


@pytest.fixture
def prefix() -> str:
    return f"/kitpy-test/{uuid.uuid4().hex}/"


def test_prefix_end_covers_exactly_the_prefix() -> None:
    assert prefix_end(b"/svc/") == b"/svc0"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") == b"\0"


async def test_client_put_range_and_lease_lifecycle(etcd: EtcdClient, prefix: str) -> None:
    lease = await etcd.grant(30)
    rev = await etcd.put(f"{prefix}a".encode(), b"1", lease=lease)
    await etcd.put(f"{prefix}b".encode(), b"2")
    await etcd.put(f"{prefix[:-1]}x".encode(), b"outside")  # shares the text, not the prefix
    revision, kvs = await etcd.range_prefix(prefix.encode())
    assert revision >= rev
    assert [(kv.key, kv.value) for kv in kvs] == [
        (f"{prefix}a".encode(), b"1"),
        (f"{prefix}b".encode(), b"2"),
    ]
    assert kvs[0].lease == lease
    assert 0 < await etcd.keepalive(lease) <= 30
    await etcd.revoke(lease)  # deletes the leased key at once
    _, kvs = await etcd.range_prefix(prefix.encode())
    assert [kv.key for kv in kvs] == [f"{prefix}b".encode()]
    assert await etcd.keepalive(lease) == 0
    with pytest.raises(NotFound, match="lease not found"):
        await etcd.revoke(lease)
    assert await etcd.delete(f"{prefix}b".encode()) == 1


async def test_an_unreachable_etcd_is_unavailable() -> None:
    async with EtcdClient(f"etcd://127.0.0.1:{free_port()}", timeout=2.0) as client:
        with pytest.raises(Unavailable, match=r"etcd at http://127\.0\.0\.1"):
            await client.range_prefix(b"/x/")


async def keys(etcd: EtcdClient, prefix: str) -> list[str]:
    _, kvs = await etcd.range_prefix(prefix.encode())
    return [kv.key.decode().removeprefix(prefix) for kv in kvs]


async def wait_keys(etcd: EtcdClient, prefix: str, expected: list[str], within: float) -> None:
    """Wait, by watching, until the keys under ``prefix`` are ``expected``."""
    revision, _ = await etcd.range_prefix(prefix.encode())
    stream = etcd.watch_prefix(prefix.encode(), start_revision=revision + 1)
    try:
        async with asyncio.timeout(within):
            if await keys(etcd, prefix) == expected:
                return
            async for _ in stream:
                if await keys(etcd, prefix) == expected:
                    return
    finally:
        await stream.aclose()


async def test_registrar_keeps_the_lease_alive_and_deregisters_at_once(
    etcd: EtcdClient, prefix: str
) -> None:
    alive = EtcdRegistrar(etcd, prefix, Instance("10.0.0.1:80", zone="z1"), ttl=2)
    crashed = EtcdRegistrar(etcd, prefix, Instance("10.0.0.2:80"), ttl=2)
    await alive.register()
    await crashed.register()
    await alive.register()  # idempotent
    assert await keys(etcd, prefix) == ["10.0.0.1:80", "10.0.0.2:80"]
    _, kvs = await etcd.range_prefix(f"{prefix}10.0.0.1:80".encode())
    assert kvs[0].value == b'{"address":"10.0.0.1:80","zone":"z1"}'

    await crashed.stop_keepalive()  # what SIGKILL looks like to etcd
    await wait_keys(etcd, prefix, ["10.0.0.1:80"], within=8)
    # the lease TTL has run out for "crashed"; "alive" outlived it thanks to the keepalive
    assert await etcd.keepalive(alive.lease) > 0

    await alive.deregister()
    assert await keys(etcd, prefix) == []  # revoked: gone at once, no TTL wait
    await alive.deregister()  # idempotent
    await crashed.deregister()  # its lease expired already: not an error


async def test_registrar_re_registers_when_its_lease_is_lost(etcd: EtcdClient, prefix: str) -> None:
    async with EtcdRegistrar(etcd, prefix, Instance("10.0.0.3:80"), ttl=2) as registrar:
        first = registrar.lease
        await etcd.revoke(first)  # e.g. etcd lost it, or the process stalled past the TTL
        assert await keys(etcd, prefix) == []
        await wait_keys(etcd, prefix, ["10.0.0.3:80"], within=5)
        for _ in range(100):  # the key can be visible a moment before the registrar records it
            if registrar.lease not in (0, first):
                break
            await asyncio.sleep(0.01)
        assert registrar.lease not in (0, first)
    assert await keys(etcd, prefix) == []


async def test_instancer_reads_the_range_then_follows_the_watch(
    etcd: EtcdClient, prefix: str
) -> None:
    await etcd.put(f"{prefix}a".encode(), b'{"address":"a:1","weight":3}')
    await etcd.put(f"{prefix}b".encode(), b"b:1")  # a bare address is fine too
    await etcd.put(f"{prefix}bad".encode(), b"{not json")
    reported: list[BaseException] = []
    instancer = EtcdInstancer(etcd, prefix, on_error=lambda i, e: reported.append(e))
    stream = instancer.subscribe()
    try:
        async with asyncio.timeout(5):
            event = await anext(stream)
            assert event.instances == (Instance("a:1", weight=3), Instance("b:1"))
            assert [type(e) for e in reported] == [json.JSONDecodeError]

            await etcd.put(f"{prefix}c".encode(), b"c:1")
            assert [i.address for i in (await anext(stream)).instances] == ["a:1", "b:1", "c:1"]
            await etcd.delete(f"{prefix}a".encode())
            assert [i.address for i in (await anext(stream)).instances] == ["b:1", "c:1"]
            await etcd.put(f"{prefix}b".encode(), b'{"address":"b:1","zone":"z2"}')
            assert (await anext(stream)).instances == (Instance("b:1", zone="z2"), Instance("c:1"))
    finally:
        await instancer.close()
    assert [e async for e in stream] == []  # closing ends the subscription


async def test_instancer_reports_errors_and_backs_off_while_etcd_is_unreachable() -> None:
    delays: list[float] = []
    gave_up = asyncio.Event()

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) >= 8:
            gave_up.set()
        await asyncio.sleep(0)

    async with EtcdClient(f"http://127.0.0.1:{free_port()}", timeout=1.0) as client:
        instancer = EtcdInstancer(
            client,
            "/svc/",
            min_backoff=0.1,
            max_backoff=1.0,
            rng=random.Random(3),
            sleep=sleep,
            on_error=lambda i, e: None,
        )
        endpointer: Endpointer[object, object] = Endpointer(
            instancer, lambda i: (lambda ctx, r: asyncio.sleep(0), None), on_error=lambda i, e: None
        )
        async with instancer, endpointer:
            async with asyncio.timeout(10):
                await gave_up.wait()
            assert isinstance(endpointer.error, Unavailable)
            assert endpointer.endpoints == ()
    # full jitter within [backoff/2, backoff]; backoff doubles up to max_backoff
    assert 0.05 <= delays[0] <= 0.1
    assert all(0.5 <= d <= 1.0 for d in delays[4:8]), delays


async def test_watch_stream_yields_events_in_order(etcd: EtcdClient, prefix: str) -> None:
    revision, _ = await etcd.range_prefix(prefix.encode())
    stream = etcd.watch_prefix(prefix.encode(), start_revision=revision + 1)
    try:
        await etcd.put(f"{prefix}k".encode(), b"v1")
        await etcd.delete(f"{prefix}k".encode())
        seen: list[tuple[str, KeyValue]] = []
        async with asyncio.timeout(5):
            async for batch in stream:
                seen.extend(batch.events)
                if len(seen) >= 2:
                    break
        assert [(kind, kv.key, kv.value) for kind, kv in seen] == [
            ("PUT", f"{prefix}k".encode(), b"v1"),
            ("DELETE", f"{prefix}k".encode(), b""),
        ]
    finally:
        await stream.aclose()
