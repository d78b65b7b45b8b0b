"""The proxy leaves this process out of its own upstreams, even when it listens on port 0."""

from __future__ import annotations

import asyncio

from kitpy.sd import Instance, Publisher

from ..proxy import WithoutSelf


async def test_without_self_reads_the_own_address_on_every_event() -> None:
    own = ["127.0.0.1:0"]  # as configured with port 0, before the server has bound
    registry = Publisher()
    events = WithoutSelf(registry, lambda: own[0]).subscribe()
    other, me = Instance("127.0.0.1:7001"), Instance("127.0.0.1:7002")
    async with asyncio.timeout(5):
        registry.update([other])
        assert (await anext(events)).instances == (other,)
        own[0] = me.address  # bound: the real port is known before the process registers
        registry.update([other, me])  # ... and its own registration comes back from etcd
        assert (await anext(events)).instances == (other,)
        registry.fail(ConnectionError("registry down"))
        assert isinstance((await anext(events)).error, ConnectionError)  # errors pass as is
    registry.close()
