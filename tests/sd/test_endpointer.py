"""Endpointer: one endpoint per instance, closed when the instance leaves, robust to errors."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from kitpy import Context, Endpoint
from kitpy.sd import Closer, Endpointer, Instance, Publisher
from kitpy.testing import FakeClock


class Backends:
    """A factory that makes an endpoint answering with the instance address, and logs."""

    def __init__(self, *, fail_for: Sequence[str] = ()) -> None:
        self.made: list[str] = []
        self.closed: list[str] = []
        self.fail_for = set(fail_for)

    def __call__(self, instance: Instance) -> tuple[Endpoint[str, str], Closer]:
        if instance.address in self.fail_for:
            raise RuntimeError(f"cannot dial {instance.address}")
        self.made.append(instance.address)

        async def endpoint(ctx: Context, request: str) -> str:
            return f"{instance.address}:{request}"

        async def close() -> None:
            self.closed.append(instance.address)

        return endpoint, close


def addresses(endpointer: Endpointer[str, str]) -> list[str]:
    return [i.address for i in endpointer.instances]


async def wait_until(endpointer: Endpointer[str, str], wanted: list[str]) -> None:
    async with asyncio.timeout(2):
        await endpointer.wait_for(lambda instances: [i.address for i in instances] == wanted)


async def test_endpoints_follow_the_instance_set_and_leavers_are_closed() -> None:
    pub, backends = Publisher(), Backends()
    async with Endpointer(pub, backends) as endpointer:
        assert len(endpointer.endpoints) == 0
        pub.update([Instance("a:1"), Instance("b:1")])
        await wait_until(endpointer, ["a:1", "b:1"])
        assert await endpointer.endpoints[1](Context(), "x") == "b:1:x"
        pub.update([Instance("b:1"), Instance("c:1")])
        await wait_until(endpointer, ["b:1", "c:1"])
        assert backends.made == ["a:1", "b:1", "c:1"]  # b was reused, not rebuilt
        assert backends.closed == ["a:1"]
    assert sorted(backends.closed) == ["a:1", "b:1", "c:1"]  # close() closes the rest


async def test_a_factory_error_skips_that_instance_and_is_reported() -> None:
    pub, backends = Publisher(), Backends(fail_for=["bad:1"])
    reported: list[tuple[Instance | None, BaseException]] = []
    endpointer = Endpointer(pub, backends, on_error=lambda i, e: reported.append((i, e)))
    async with endpointer:
        pub.update([Instance("bad:1"), Instance("good:1")])
        await wait_until(endpointer, ["good:1"])
    assert [(i, str(e)) for i, e in reported] == [(Instance("bad:1"), "cannot dial bad:1")]


async def test_instancer_errors_keep_the_last_good_set_by_default() -> None:
    pub, backends = Publisher(), Backends()
    async with Endpointer(pub, backends, on_error=lambda i, e: None) as endpointer:
        pub.update([Instance("a:1")])
        await wait_until(endpointer, ["a:1"])
        pub.fail(ConnectionError("etcd down"))
        async with asyncio.timeout(2):
            await endpointer.wait_for(lambda _: endpointer.error is not None)
        assert addresses(endpointer) == ["a:1"]
        assert backends.closed == []
        pub.update([Instance("a:1")])
        async with asyncio.timeout(2):
            await endpointer.wait_for(lambda _: endpointer.error is None)
        assert backends.made == ["a:1"]


async def test_invalidate_on_error_drops_the_set_once_the_error_outlasts_it() -> None:
    pub, backends, clock = Publisher(), Backends(), FakeClock()
    endpointer = Endpointer(
        pub, backends, invalidate_on_error=5.0, clock=clock, on_error=lambda i, e: None
    )
    async with endpointer:
        pub.update([Instance("a:1")])
        await wait_until(endpointer, ["a:1"])
        pub.fail(ConnectionError("etcd down"))
        async with asyncio.timeout(2):
            await endpointer.wait_for(lambda _: endpointer.error is not None)
        clock.advance(4.9)
        assert addresses(endpointer) == ["a:1"]
        clock.advance(0.2)
        assert endpointer.endpoints == ()
        await asyncio.sleep(0.01)  # closers run in the background
        assert backends.closed == ["a:1"]
        pub.update([Instance("a:1")])  # recovery builds it again
        await wait_until(endpointer, ["a:1"])
        assert backends.made == ["a:1", "a:1"]


async def test_a_failing_closer_is_reported_not_raised() -> None:
    pub = Publisher()
    reported: list[BaseException] = []

    def factory(instance: Instance) -> tuple[Endpoint[str, str], Closer]:
        async def endpoint(ctx: Context, request: str) -> str:
            return request

        async def close() -> None:
            raise OSError("close failed")

        return endpoint, close

    endpointer = Endpointer(pub, factory, on_error=lambda i, e: reported.append(e))
    async with endpointer:
        pub.update([Instance("a:1")])
        await wait_until(endpointer, ["a:1"])
        pub.update([])
        await wait_until(endpointer, [])
    assert [str(e) for e in reported] == ["close failed"]


def test_negative_invalidate_on_error_is_rejected() -> None:
    with pytest.raises(ValueError, match="invalidate_on_error"):
        Endpointer(Publisher(), Backends(), invalidate_on_error=-1)
