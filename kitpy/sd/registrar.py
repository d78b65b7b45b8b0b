"""The :class:`Registrar` contract: announce this process in a registry while it lives.

A registrar is built with the :class:`~kitpy.sd.Instance` to announce and the
backend's options.  ``register()`` returns once the instance is visible and
keeps it alive in the background (an etcd lease keepalive, a Consul TTL check
pass, ...); ``deregister()`` removes it at once and stops the background work.
If the process dies instead, the lease or TTL runs out and the registry drops
the instance by itself.  Registrars are async context managers::

    async with EtcdRegistrar(client, "/services/users/", Instance(addr), ttl=10):
        await serve_forever()
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

__all__ = ["Registrar"]


class Registrar(Protocol):
    """Registers one instance and keeps the registration alive until deregistered."""

    async def register(self) -> None:
        """Make the instance visible and start keeping it alive; idempotent."""
        ...

    async def deregister(self) -> None:
        """Remove the instance now and stop keeping it alive; idempotent."""
        ...

    async def __aenter__(self) -> Registrar: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
