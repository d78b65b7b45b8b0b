"""A static instance list as an :class:`~kitpy.sd.Instancer`.

For configuration-file deployments ("the three replicas are at ..."), for
tests, and for benchmarks.  Strings are taken as addresses.

Example::

    instancer = FixedInstancer(["10.0.0.1:8080", "10.0.0.2:8080"])
    async with Endpointer(instancer, factory) as endpointer:
        ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from kitpy.sd.instance import Instance
from kitpy.sd.instancer import Event, Publisher

__all__ = ["FixedInstancer"]


class FixedInstancer:
    """Always reports the same instances (until :meth:`close`)."""

    def __init__(self, instances: Iterable[Instance | str]) -> None:
        self._publisher = Publisher()
        self._publisher.update(i if isinstance(i, Instance) else Instance(i) for i in instances)

    @property
    def instances(self) -> tuple[Instance, ...]:
        """The instances, sorted by (priority, address)."""
        latest = self._publisher.latest
        return () if latest is None else latest.instances

    def subscribe(self) -> AsyncIterator[Event]:
        """Yield the instance set once, then wait until closed."""
        return self._publisher.subscribe()

    def close(self) -> None:
        """End every subscription."""
        self._publisher.close()
