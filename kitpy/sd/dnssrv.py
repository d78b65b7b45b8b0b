"""DNS SRV service discovery: an :class:`~kitpy.sd.Instancer` that polls SRV records.

Uses dnspython's asyncio resolver, always an explicit ``Resolver`` object the
caller configures (nameservers, port, timeouts), never the module default.
Each poll resolves ``name`` (e.g. ``_http._tcp.users.example``) and publishes
one :class:`~kitpy.sd.Instance` per record, address ``target:port``, with the
record's ``priority`` and ``weight`` on the instance and ``target`` in its
metadata.

Priority and weight follow RFC 2782: a client uses the lowest priority it can
reach, and among those chooses in proportion to weight.  Here that splits in
two: by default the instancer publishes only the lowest-priority group (the
higher ones are backups, published once the lowest group disappears from
DNS; ``lowest_priority_only=False`` publishes every record), and
:class:`~kitpy.sd.WeightedRandom` picks by weight.  P2C or round robin over
the same instances ignore weight.

A failed lookup -- timeout, SERVFAIL, and also NXDOMAIN or an empty answer --
is published as an error event, so an Endpointer keeps the last good set
rather than dropping every instance because of a DNS hiccup or a typo'd zone
(use ``invalidate_on_error`` to bound that).
"""

from __future__ import annotations

from kitpy._extras import require

require("dns", extra="dns")

import asyncio
import logging
from collections.abc import Awaitable, Callable

import dns.asyncresolver
import dns.rdatatype
import dns.resolver
from dns.rdtypes.IN.SRV import SRV

from kitpy.sd.endpointer import ErrorReporter
from kitpy.sd.instance import Instance
from kitpy.sd.instancer import BackgroundInstancer

__all__ = ["DNSSRVInstancer"]

_log = logging.getLogger("kitpy.sd.dnssrv")


def _log_error(instance: Instance | None, error: BaseException) -> None:
    _log.warning("DNS SRV lookup failed: %r", error)


class DNSSRVInstancer(BackgroundInstancer):
    """Polls the SRV records of ``name`` every ``interval`` seconds.

    Example::

        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = ["10.0.0.53"]
        instancer = DNSSRVInstancer("_http._tcp.users.internal", resolver=resolver)
        async with instancer, Endpointer(instancer, factory) as endpointer:
            balancer = WeightedRandom(endpointer)

    ``resolve_targets=True`` turns each target into its A/AAAA addresses
    (one instance per address) using the answer's additional section or, if
    that is empty, the same resolver; otherwise the address keeps the target
    name and the transport resolves it.  ``lifetime`` bounds each lookup.
    """

    def __init__(
        self,
        name: str,
        *,
        resolver: dns.asyncresolver.Resolver,
        interval: float = 30.0,
        lifetime: float = 5.0,
        lowest_priority_only: bool = True,
        resolve_targets: bool = False,
        on_error: ErrorReporter | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__()
        if interval <= 0 or lifetime <= 0:
            raise ValueError("interval and lifetime must be > 0 seconds")
        self.name = name
        self._resolver = resolver
        self._interval = interval
        self._lifetime = lifetime
        self._lowest_only = lowest_priority_only
        self._resolve_targets = resolve_targets
        self._on_error = on_error or _log_error
        self._sleep = sleep

    async def lookup(self) -> list[Instance]:
        """Resolve ``name`` once and return its instances (raises dnspython errors)."""
        answer = await self._resolver.resolve(self.name, dns.rdatatype.SRV, lifetime=self._lifetime)
        records = [r for r in answer if isinstance(r, SRV)]
        if self._lowest_only and records:
            lowest = min(r.priority for r in records)
            records = [r for r in records if r.priority == lowest]
        glue: dict[str, list[str]] = {}
        if self._resolve_targets:
            for rrset in answer.response.additional:
                if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                    glue.setdefault(rrset.name.to_text(), []).extend(r.to_text() for r in rrset)
        instances: list[Instance] = []
        for record in records:
            target = record.target.to_text()
            hosts = [target.rstrip(".")]
            if self._resolve_targets:
                hosts = glue.get(target) or await self._addresses(target)
            for host in hosts:
                address = f"[{host}]:{record.port}" if ":" in host else f"{host}:{record.port}"
                instances.append(
                    Instance(
                        address,
                        weight=record.weight,
                        priority=record.priority,
                        metadata={"target": target.rstrip(".")},
                    )
                )
        return instances

    async def _addresses(self, target: str) -> list[str]:
        try:
            answer = await self._resolver.resolve(target, "A", lifetime=self._lifetime)
        except dns.resolver.NoAnswer:
            answer = await self._resolver.resolve(target, "AAAA", lifetime=self._lifetime)
        return [r.to_text() for r in answer]

    async def _run(self) -> None:
        while True:
            try:
                self._publisher.update(await self.lookup())
            except Exception as exc:  # DNS errors above all; nothing may end the poll loop
                self._on_error(None, exc)
                self._publisher.fail(exc)
            await self._sleep(self._interval)
