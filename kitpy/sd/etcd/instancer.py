"""Follow the instances registered under an etcd prefix: initial range, then a watch.

The loop: read every key under the prefix (one consistent revision) and
publish the set; watch the prefix from the next revision and publish after
each batch of changes.  When the watch drops -- etcd restarted, the
connection broke, the revision was compacted -- publish an error event (an
:class:`~kitpy.sd.Endpointer` keeps its last good set meanwhile), wait with
exponential backoff and full jitter, then read the range again and resume.
Reading the whole range again on every reconnect means no change can be
missed while the watch was down.

Values are instance JSON as written by :class:`~kitpy.sd.etcd.EtcdRegistrar`;
a bare address string is accepted too (other registrars write just that).
Keys whose value cannot be read are skipped and reported.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable

from kitpy.sd.endpointer import ErrorReporter
from kitpy.sd.etcd.client import EtcdClient, KeyValue
from kitpy.sd.instance import Instance
from kitpy.sd.instancer import BackgroundInstancer

__all__ = ["EtcdInstancer", "parse_instance"]

_log = logging.getLogger("kitpy.sd.etcd")


def _log_error(instance: Instance | None, error: BaseException) -> None:
    _log.warning("etcd instancer: %r", error)


def parse_instance(kv: KeyValue) -> Instance:
    """Read one registry entry: instance JSON, or a bare address string."""
    text = kv.value.decode("utf-8").strip()
    if text.startswith("{"):
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"key {kv.key!r}: instance JSON must be an object")
        return Instance.from_dict(data)
    if not text:
        raise ValueError(f"key {kv.key!r}: empty value")
    return Instance(text)


class EtcdInstancer(BackgroundInstancer):
    """An :class:`~kitpy.sd.Instancer` over every key under ``prefix``.

    Example::

        async with EtcdClient("http://127.0.0.1:2379") as etcd:
            instancer = EtcdInstancer(etcd, "/services/stringsvc/")
            async with instancer, Endpointer(instancer, factory) as endpointer:
                ...

    Following starts on the first :meth:`subscribe` (or :meth:`start`) and stops
    on :meth:`close`.  ``min_backoff``/``max_backoff`` bound the reconnect
    delay (seconds); ``rng`` and ``sleep`` are injectable for tests.
    """

    def __init__(
        self,
        client: EtcdClient,
        prefix: str,
        *,
        min_backoff: float = 0.1,
        max_backoff: float = 5.0,
        on_error: ErrorReporter | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__()
        if not prefix:
            raise ValueError("an empty prefix would watch the whole of etcd")
        if not 0 < min_backoff <= max_backoff:
            raise ValueError("need 0 < min_backoff <= max_backoff")
        self._client = client
        self.prefix = prefix
        self._prefix = prefix.encode()
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._on_error = on_error or _log_error
        self._random = (rng or random.Random()).random
        self._sleep = sleep
        self._backoff = min_backoff

    def _parse(self, kv: KeyValue) -> Instance | None:
        try:
            return parse_instance(kv)
        except (ValueError, UnicodeDecodeError) as exc:
            self._on_error(None, exc)
            return None

    async def _follow(self) -> None:
        """One range + watch session; returns only by raising."""
        revision, kvs = await self._client.range_prefix(self._prefix)
        current: dict[bytes, Instance] = {}
        for kv in kvs:
            instance = self._parse(kv)
            if instance is not None:
                current[kv.key] = instance
        self._publisher.update(current.values())
        self._backoff = self._min_backoff
        stream = self._client.watch_prefix(self._prefix, start_revision=revision + 1)
        try:
            async for batch in stream:
                for kind, kv in batch.events:
                    if kind == "DELETE":
                        current.pop(kv.key, None)
                        continue
                    instance = self._parse(kv)
                    if instance is None:
                        current.pop(kv.key, None)
                    else:
                        current[kv.key] = instance
                self._publisher.update(current.values())
        finally:
            await stream.aclose()

    async def _run(self) -> None:
        self._backoff = self._min_backoff
        while True:
            try:
                await self._follow()
            except Exception as exc:
                self._on_error(None, exc)
                self._publisher.fail(exc)
            delay = self._backoff * (0.5 + self._random() / 2)
            self._backoff = min(self._max_backoff, self._backoff * 2)
            await self._sleep(delay)
