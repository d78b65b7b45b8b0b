"""Upstream services of a route table, and where their instances come from (service discovery).

An :class:`Upstream` names a service and one source of its instances: a fixed
list of addresses, an etcd prefix (instances registered by
:class:`~kitpy.sd.etcd.EtcdRegistrar`) or a DNS SRV name.  It is configuration
only; :func:`instancer_for` turns it into the matching :class:`kitpy.sd`
Instancer with clients the application created (an
:class:`~kitpy.sd.etcd.EtcdClient`, a dnspython resolver), so this module
opens no connection of its own.

>>> upstream = Upstream("stringsvc", addresses=("127.0.0.1:8081", "127.0.0.1:8082"))
>>> [i.address for i in instancer_for(upstream).instances]
['127.0.0.1:8081', '127.0.0.1:8082']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kitpy.config.types import Address
from kitpy.sd.fixed import FixedInstancer
from kitpy.sd.instancer import BackgroundInstancer

if TYPE_CHECKING:
    import dns.asyncresolver

    from kitpy.sd.etcd import EtcdClient

__all__ = ["Upstream", "instancer_for"]


@dataclass(frozen=True, slots=True)
class Upstream:
    """A service behind the gateway and the one source of its instances.

    Give exactly one of ``addresses``, ``etcd_prefix`` and ``dns_srv``.  In a
    route file this is an ``[upstream.NAME]`` table (see docs/gateway.md).
    """

    name: str
    """The name routes use in their ``upstream`` field."""
    addresses: tuple[str, ...] = ()
    """A fixed list of ``host:port`` instances."""
    etcd_prefix: str = ""
    """An etcd key prefix under which the instances register (``/services/stringsvc/``)."""
    dns_srv: str = ""
    """A DNS SRV name whose records are the instances (``_http._tcp.users.internal``)."""
    grpc_address_key: str = ""
    """For ``connect`` routes: the instance metadata key holding its gRPC address (stringsvc
    registers it under ``grpc``); default: the instance's address."""
    descriptor_set: str = ""
    """For ``connect`` routes: a ``FileDescriptorSet`` file with the service's message types;
    default: the instances' gRPC server reflection."""

    def problem(self) -> tuple[str, str] | None:
        """``(field, what is wrong)`` when this upstream cannot be used, else None."""
        if not self.name or any(c.isspace() for c in self.name):
            return "name", f"expected a name without spaces, got {self.name!r}"
        given = [f for f in ("addresses", "etcd_prefix", "dns_srv") if getattr(self, f)]
        if len(given) != 1:
            got = " and ".join(given) if given else "none"
            return "", f"give exactly one of addresses, etcd_prefix, dns_srv (got {got})"
        for address in self.addresses:
            try:
                Address.parse(address)
            except ValueError as exc:
                return "addresses", str(exc)
        return None


def instancer_for(
    upstream: Upstream,
    *,
    etcd: EtcdClient | None = None,
    resolver: dns.asyncresolver.Resolver | None = None,
) -> FixedInstancer | BackgroundInstancer:
    """The :mod:`kitpy.sd` Instancer of ``upstream``'s instances.

    ``etcd`` is needed for an ``etcd_prefix`` upstream, ``resolver`` for a
    ``dns_srv`` one (``kitpy[dns]``).  An :class:`~kitpy.sd.etcd.EtcdInstancer`
    or :class:`~kitpy.sd.dnssrv.DNSSRVInstancer` starts following on its first
    subscription; the caller closes it (``await instancer.close()``) when the
    upstream leaves the table.  A :class:`~kitpy.sd.FixedInstancer` needs no
    closing.  Raises ``ValueError`` when the client the upstream needs is missing.
    """
    if upstream.addresses:
        return FixedInstancer(upstream.addresses)
    if upstream.etcd_prefix:
        if etcd is None:
            raise ValueError(
                f"upstream {upstream.name} is found under etcd prefix {upstream.etcd_prefix}: "
                "pass etcd= (an EtcdClient)"
            )
        from kitpy.sd.etcd import EtcdInstancer

        return EtcdInstancer(etcd, upstream.etcd_prefix)
    if upstream.dns_srv:
        if resolver is None:
            raise ValueError(
                f"upstream {upstream.name} is found through DNS SRV {upstream.dns_srv}: "
                "pass resolver= (a dns.asyncresolver.Resolver)"
            )
        from kitpy.sd.dnssrv import DNSSRVInstancer

        return DNSSRVInstancer(upstream.dns_srv, resolver=resolver)
    raise ValueError(f"upstream {upstream.name} has no source of instances")
