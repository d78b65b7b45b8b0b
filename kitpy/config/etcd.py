"""Live settings watched under an etcd key prefix (``kitpy[etcd]``).

:class:`EtcdSettings` reads every key under ``prefix`` (the setting's name
follows the prefix: ``/config/stringsvc/rate_limit``), then watches the
prefix: a put sets the setting (converted and checked first, see
:class:`~kitpy.config.Live`), a delete returns it to its static value.  When
etcd goes away the settings keep their values; the watch reconnects with
exponential backoff and full jitter, reads the prefix again (catching up on
whatever changed meanwhile) and resumes.  It talks to etcd through kitpy.sd's
:class:`~kitpy.sd.etcd.EtcdClient`, which the application creates and closes.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from kitpy.config.live import Live
from kitpy.config.sources import BackgroundSource, apply_snapshot, log_problem
from kitpy.sd.etcd import EtcdClient, KeyValue

__all__ = ["EtcdSettings"]


class EtcdSettings(BackgroundSource):
    """Keep ``settings`` (live settings by name) in step with the keys under ``prefix``.

    ``synced`` is set after each full read of the prefix (at start and after a
    reconnection), cleared while etcd is unreachable.

    Example::

        rate = Live(None, name="rate_limit", type=float | None)
        async with EtcdClient("http://127.0.0.1:2379") as etcd:
            async with EtcdSettings(etcd, prefix="/config/stringsvc/",
                                    settings={"rate_limit": rate}):
                ...  # `etcdctl put /config/stringsvc/rate_limit 5` sets rate.value to 5.0
    """

    def __init__(
        self,
        client: EtcdClient,
        *,
        prefix: str,
        settings: Mapping[str, Live[Any]],
        min_backoff: float = 0.1,
        max_backoff: float = 5.0,
        on_problem: Callable[[str], None] = log_problem,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not 0 < min_backoff <= max_backoff:
            raise ValueError("need 0 < min_backoff <= max_backoff")
        self.prefix = prefix
        self.synced = asyncio.Event()
        self._client = client
        self._settings = settings
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._on_problem = on_problem
        self._random = (rng or random.Random()).random
        self._sleep = sleep
        self._backoff = min_backoff

    def __repr__(self) -> str:
        return f"EtcdSettings(prefix={self.prefix!r})"

    def _name(self, kv: KeyValue) -> str:
        return kv.key.decode("utf-8", "replace")[len(self.prefix) :]

    def _source(self, kv: KeyValue) -> str:
        return f"etcd key {kv.key.decode('utf-8', 'replace')}"

    def _put(self, kv: KeyValue) -> None:
        name = self._name(kv)
        live = self._settings.get(name)
        if live is None:
            self._on_problem(f"{self._source(kv)}: {name} is not a live setting")
            return
        live.set(kv.value.decode("utf-8", "replace").strip(), source=self._source(kv))

    async def _follow(self) -> None:
        """One read + watch session; returns only by raising."""
        revision, kvs = await self._client.range_prefix(self.prefix.encode())
        values = {self._name(kv): kv.value.decode("utf-8", "replace").strip() for kv in kvs}
        source = f"etcd prefix {self.prefix}"
        apply_snapshot(self._settings, values, source=source, on_problem=self._on_problem)
        self.synced.set()
        self._backoff = self._min_backoff  # a good session resets the backoff
        stream = self._client.watch_prefix(self.prefix.encode(), start_revision=revision + 1)
        try:
            async for batch in stream:
                for kind, kv in batch.events:
                    live = self._settings.get(self._name(kv))
                    if kind == "DELETE" and live is not None:
                        live.reset()
                    elif kind != "DELETE":
                        self._put(kv)
        finally:
            await stream.aclose()

    async def follow(self) -> None:
        """Read and watch the prefix; reconnect with backoff whenever the watch drops."""
        while True:
            try:
                await self._follow()
            except Exception as exc:
                self.synced.clear()
                self._on_problem(f"etcd prefix {self.prefix}: {exc}; keeping current values")
            delay = self._backoff * (0.5 + self._random() / 2)
            self._backoff = min(self._max_backoff, self._backoff * 2)
            await self._sleep(delay)
