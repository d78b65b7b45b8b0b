"""DNS SRV discovery against a real dnsmasq on a loopback port."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import aiohttp
import dns.asyncresolver
import dns.resolver
import pytest

from kitpy import Context
from kitpy.sd import Endpointer, Instance, WeightedRandom, balanced
from kitpy.sd.dnssrv import DNSSRVInstancer
from kitpy.transport.http import start_app

from .conftest import Dnsmasq
from .upper import Upper, http_factory, make_app

pytestmark = pytest.mark.servers

NAME = "_http._tcp.svc.test"


@pytest.fixture
def resolver(dnsmasq_server: Dnsmasq) -> dns.asyncresolver.Resolver:
    """An explicit resolver aimed at the test dnsmasq (never the system default)."""
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = dnsmasq_server.port
    resolver.cache = None
    return resolver


async def test_lookup_exposes_priority_and_weight_and_keeps_the_lowest_priority(
    dnsmasq_server: Dnsmasq, resolver: dns.asyncresolver.Resolver
) -> None:
    dnsmasq_server.serve(
        [
            f"{NAME},a.svc.test,8001,10,60",
            f"{NAME},b.svc.test,8002,10,20",
            f"{NAME},backup.svc.test,8003,20,5",
        ]
    )
    lowest = await DNSSRVInstancer(NAME, resolver=resolver).lookup()
    assert sorted(lowest, key=lambda i: i.address) == [
        Instance("a.svc.test:8001", weight=60, priority=10, metadata={"target": "a.svc.test"}),
        Instance("b.svc.test:8002", weight=20, priority=10, metadata={"target": "b.svc.test"}),
    ]
    everything = await DNSSRVInstancer(NAME, resolver=resolver, lowest_priority_only=False).lookup()
    assert sorted((i.address, i.priority, i.weight) for i in everything) == [
        ("a.svc.test:8001", 10, 60),
        ("b.svc.test:8002", 10, 20),
        ("backup.svc.test:8003", 20, 5),
    ]


async def test_resolve_targets_turns_names_into_addresses(
    dnsmasq_server: Dnsmasq, resolver: dns.asyncresolver.Resolver
) -> None:
    dnsmasq_server.serve(
        [f"{NAME},a.svc.test,8001,0,1", f"{NAME},b.svc.test,8002,0,1"],
        ["a.svc.test,127.0.0.11", "b.svc.test,127.0.0.12"],
    )
    found = await DNSSRVInstancer(NAME, resolver=resolver, resolve_targets=True).lookup()
    assert sorted(i.address for i in found) == ["127.0.0.11:8001", "127.0.0.12:8002"]


async def test_polling_follows_changes_and_a_failed_lookup_keeps_the_last_set(
    dnsmasq_server: Dnsmasq, resolver: dns.asyncresolver.Resolver
) -> None:
    dnsmasq_server.serve([f"{NAME},a.svc.test,8001,0,1"])
    instancer = DNSSRVInstancer(
        NAME, resolver=resolver, interval=0.05, lifetime=1.0, on_error=lambda i, e: None
    )
    endpointer: Endpointer[object, object] = Endpointer(
        instancer, lambda i: (lambda ctx, r: asyncio.sleep(0), None), on_error=lambda i, e: None
    )

    def addresses() -> list[str]:
        return [i.address for i in endpointer.instances]

    async with instancer, endpointer:
        async with asyncio.timeout(10):
            await endpointer.wait_for(lambda _: addresses() == ["a.svc.test:8001"])
            dnsmasq_server.serve([f"{NAME},a.svc.test,8001,0,1", f"{NAME},b.svc.test,8002,0,1"])
            await endpointer.wait_for(lambda _: len(addresses()) == 2)
            dnsmasq_server.serve([])  # the name is gone: NXDOMAIN
            await endpointer.wait_for(lambda _: endpointer.error is not None)
        assert isinstance(endpointer.error, dns.resolver.NXDOMAIN)
        assert addresses() == ["a.svc.test:8001", "b.svc.test:8002"]  # last good set kept


async def test_weighted_random_over_srv_spreads_real_traffic_by_weight(
    dnsmasq_server: Dnsmasq, resolver: dns.asyncresolver.Resolver
) -> None:
    heavy = await start_app(make_app("heavy"), port=0, access_log=None)
    light = await start_app(make_app("light"), port=0, access_log=None)
    try:
        dnsmasq_server.serve(
            [
                f"{NAME},heavy.svc.test,{heavy.addresses[0][1]},0,3",
                f"{NAME},light.svc.test,{light.addresses[0][1]},0,1",
            ],
            ["heavy.svc.test,127.0.0.1", "light.svc.test,127.0.0.1"],
        )
        async with aiohttp.ClientSession() as session:
            instancer = DNSSRVInstancer(NAME, resolver=resolver, resolve_targets=True)
            async with instancer, Endpointer(instancer, http_factory(session)) as endpointer:
                async with asyncio.timeout(10):
                    await endpointer.wait_for(lambda instances: len(instances) == 2)
                endpoint = balanced(WeightedRandom(endpointer, rng=random.Random(11)))
                ctx = Context().with_timeout(5)
                served = Counter([(await endpoint(ctx, Upper(s="x"))).by for _ in range(200)])
    finally:
        await heavy.stop()
        await light.stop()
    assert 0.65 < served["heavy"] / 200 < 0.85, served  # weights 3:1
