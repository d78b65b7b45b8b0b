"""Register this process in etcd under a prefix, with a lease kept alive in the background.

The key is ``prefix + instance.address`` and the value the instance as JSON
(:meth:`~kitpy.sd.Instance.to_dict`), attached to a lease of ``ttl`` seconds.
A background task refreshes the lease every ``ttl / 3`` seconds.  If etcd is
unreachable it keeps trying (quickly enough to beat the TTL); if the lease has
expired meanwhile (etcd lost it, or the process was paused past the TTL) it
grants a new lease and writes the key again.  ``deregister()`` stops the task
and revokes the lease, which deletes the key at once.  If the process dies,
nothing refreshes the lease and etcd drops the key within ``ttl`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

from kitpy.errors import NotFound
from kitpy.sd.endpointer import ErrorReporter
from kitpy.sd.etcd.client import EtcdClient
from kitpy.sd.instance import Instance

__all__ = ["EtcdRegistrar"]

_log = logging.getLogger("kitpy.sd.etcd")


def _log_error(instance: Instance | None, error: BaseException) -> None:
    _log.warning("etcd registration of %r: %r", instance, error)


class EtcdRegistrar:
    """Keeps ``instance`` registered under ``prefix`` while the process lives.

    Example::

        etcd = EtcdClient("http://127.0.0.1:2379")
        instance = Instance("10.0.0.7:8080", metadata={"transport": "http"})
        async with EtcdRegistrar(etcd, "/services/stringsvc/", instance, ttl=10):
            await serve_forever()

    ``ttl`` is whole seconds (etcd's minimum is about 2).  ``on_error`` hears
    about failed refreshes (default: a warning on the ``kitpy.sd.etcd``
    logger); ``sleep`` is injectable for tests.
    """

    def __init__(
        self,
        client: EtcdClient,
        prefix: str,
        instance: Instance,
        *,
        ttl: int = 10,
        on_error: ErrorReporter | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if ttl < 1:
            raise ValueError("ttl must be at least 1 second")
        self._client = client
        self.instance = instance
        self.key = (prefix + instance.address).encode()
        self._value = json.dumps(instance.to_dict(), separators=(",", ":")).encode()
        self._ttl = ttl
        self._on_error = on_error or _log_error
        self._sleep = sleep
        self._lease = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def lease(self) -> int:
        """The current lease id (0 when not registered)."""
        return self._lease

    async def _write(self) -> None:
        lease = await self._client.grant(self._ttl)
        try:
            await self._client.put(self.key, self._value, lease=lease)
        except BaseException:
            with contextlib.suppress(Exception):
                await self._client.revoke(lease)
            raise
        self._lease = lease

    async def register(self) -> None:
        """Write the key under a new lease and start the keepalive (no-op if registered)."""
        if self._task is not None:
            return
        await self._write()
        self._task = asyncio.get_running_loop().create_task(self._keepalive())

    async def _keepalive(self) -> None:
        period = max(0.2, self._ttl / 3)
        retry = max(0.1, min(period / 2, 1.0))
        delay = period
        while True:
            await self._sleep(delay)
            try:
                remaining = await self._client.keepalive(self._lease)
                if remaining <= 0:  # the lease is gone: register anew
                    await self._write()
                delay = period
            except Exception as exc:
                self._on_error(self.instance, exc)
                delay = retry

    async def stop_keepalive(self) -> None:
        """Stop refreshing the lease *without* revoking it: the key expires after the TTL.

        What a crash looks like to the registry; useful to drain slowly or in tests.
        """
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def deregister(self) -> None:
        """Stop the keepalive and revoke the lease, removing the key at once (idempotent)."""
        await self.stop_keepalive()
        lease, self._lease = self._lease, 0
        if lease:
            with contextlib.suppress(NotFound):
                await self._client.revoke(lease)

    async def __aenter__(self) -> EtcdRegistrar:
        await self.register()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.deregister()
