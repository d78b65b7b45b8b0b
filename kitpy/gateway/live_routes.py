"""The route table in use, reloaded live from a file and/or an etcd key; a bad table never lands.

:class:`LiveRouteTable` holds the table requests are matched against in
:attr:`~LiveRouteTable.current` -- one attribute read per request -- and
swaps the whole table at once when its source changes.  A new table is
parsed and validated first (:func:`~kitpy.gateway.route_config.parse_routes`);
one that fails is rejected with one error log line naming the source, the
route and the field, and the old table stays.

Two sources, in layers:

* a **file** (TOML), polled every ``interval`` seconds for a new modification
  time or size -- the base table.  A file that disappears or cannot be read
  is reported and the current table stays.
* an **etcd key** holding the same text (TOML or JSON), watched through
  :class:`kitpy.config.etcd.EtcdSettings` (reconnecting with backoff) -- when
  the key exists, its table overrides the file's.  Deleting the key (or
  writing it empty) falls back to the file's latest good table (or the table
  given at construction when there is no file).

Both layers are :class:`kitpy.config.Live` values, so rejections are
:class:`~kitpy.config.Rejection` objects, counted in ``rejections`` like any
live setting's (label ``setting="routes"``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, Self

from kitpy.config.etcd import EtcdSettings
from kitpy.config.live import Live, Rejection
from kitpy.config.sources import BackgroundSource
from kitpy.gateway.route_config import load_routes, parse_routes
from kitpy.gateway.routes import RouteError, RouteTable
from kitpy.metrics.instruments import Counter
from kitpy.sd.etcd import EtcdClient

__all__ = ["FIRST_READ", "LiveRouteTable"]

FIRST_READ = 2.0
"""Seconds :meth:`LiveRouteTable.start` waits for the etcd key before serving the file's table."""

_log = logging.getLogger("kitpy.gateway")


class LiveRouteTable:
    """The current :class:`~kitpy.gateway.routes.RouteTable`, following a file and/or etcd.

    ``table`` is the starting table; without it, ``path`` is read now (an
    invalid file raises :class:`~kitpy.gateway.routes.RouteError`: a gateway
    does not start on a broken table).  ``path`` is then polled every
    ``interval`` seconds; ``etcd`` and ``key`` add an etcd key whose table,
    while it exists, overrides the file's.  ``ignore`` names top-level
    tables of the file that are not routes (see
    :func:`~kitpy.gateway.route_config.parse_routes`).

    ``on_reject`` receives each rejected table (default: one error line on
    the ``kitpy.gateway`` logger); ``on_problem`` each problem of a source --
    file missing, etcd unreachable (default: a warning there).

    Example::

        routes = LiveRouteTable(path="gateway.toml", etcd=etcd, key="/config/gateway/routes")
        async with routes:
            route = routes.current.match(request.method, request.path)
    """

    __slots__ = (
        "_base",
        "_etcd",
        "_file",
        "_first_read",
        "_key",
        "_on_problem",
        "_override",
        "_subscribers",
        "current",
    )

    def __init__(
        self,
        table: RouteTable | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
        interval: float = 1.0,
        etcd: EtcdClient | None = None,
        key: str = "",
        first_read: float = FIRST_READ,
        ignore: Collection[str] = (),
        on_reject: Callable[[Rejection], None] | None = None,
        on_problem: Callable[[str], None] | None = None,
        rejections: Counter | None = None,
    ) -> None:
        if (etcd is None) != (not key):
            raise ValueError("give etcd= and key= together (the key holding the route table)")
        if not first_read >= 0:
            raise ValueError("first_read must be >= 0 seconds")
        if table is None:
            if path is None:
                raise ValueError("give a table, a path to read it from, or both")
            table = load_routes(path, ignore=ignore)
        on_reject = on_reject or _log_rejection
        self._on_problem = on_problem or _log_problem
        self._base: Live[RouteTable] = Live(
            table,
            name="routes",
            type=_Reader(ignore, empty_is_none=False),
            on_reject=on_reject,
            rejections=rejections,
        )
        self._override: Live[RouteTable | None] = Live(
            None,
            name="routes",
            type=_Reader(ignore, empty_is_none=True),
            on_reject=on_reject,
            rejections=rejections,
        )
        self.current: RouteTable = table
        """The table in use: read it once per request."""
        self._subscribers: list[Callable[[RouteTable], object]] = []
        self._base.subscribe(self._update)
        self._override.subscribe(self._update)
        self._file = None if path is None else _TableFile(
            Path(path), self._base, interval=interval, on_problem=self._on_problem
        )  # fmt: skip
        self._key = key
        self._first_read = first_read
        self._etcd = None if etcd is None else EtcdSettings(
            etcd, prefix=key, settings={"": self._override}, on_problem=self._on_problem
        )  # fmt: skip

    def set(self, raw: str | Mapping[str, Any] | RouteTable, *, source: str = "") -> bool:
        """Replace the base (file) table with ``raw``; False if it was rejected.

        ``raw`` is TOML or JSON text, a parsed mapping or a table.  An etcd
        override, while there is one, stays in use.
        """
        return self._base.set(raw, source=source)

    def subscribe(self, subscriber: Callable[[RouteTable], object]) -> Callable[[], None]:
        """Call ``subscriber(table)`` after each swap; returns an unsubscribe function.

        A subscriber may refuse a table by raising ``ValueError`` (it is then
        rejected like an invalid one, and the subscribers see the old table
        again); it should raise nothing else.
        """
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    async def start(self) -> None:
        """Follow the file and etcd; wait up to ``first_read`` seconds for the etcd key."""
        if self._file is not None:
            await self._file.start()
        if self._etcd is not None:
            await self._etcd.start()
            try:
                async with asyncio.timeout(self._first_read):
                    await self._etcd.synced.wait()
            except TimeoutError:
                self._on_problem(
                    f"etcd key {self._key}: not read within {self._first_read:g}s; "
                    "serving the file's route table until it is"
                )

    async def close(self) -> None:
        """Stop following; :attr:`current` keeps the last table."""
        if self._etcd is not None:
            await self._etcd.close()
        if self._file is not None:
            await self._file.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _update(self, _: object) -> None:
        override = self._override.value
        table = self._base.value if override is None else override
        if table is self.current:
            return
        self.current = table
        _log.info("route table in use: %r", table)
        for subscriber in list(self._subscribers):
            subscriber(table)

    def __repr__(self) -> str:
        return f"LiveRouteTable({self.current!r})"


class _Reader:
    """Route-table text as :class:`~kitpy.config.Live` converts it: through ``parse``.

    :func:`kitpy.config.convert` calls the ``parse`` of the type it is given;
    an object with ``parse`` stands in for a type here because the parse
    depends on ``ignore``.
    """

    def __init__(self, ignore: Collection[str], *, empty_is_none: bool) -> None:
        self._ignore = ignore
        self._empty_is_none = empty_is_none

    def parse(self, raw: object) -> RouteTable | None:
        if isinstance(raw, RouteTable):
            return raw
        if self._empty_is_none and (raw is None or (isinstance(raw, str) and not raw.strip())):
            return None
        if not isinstance(raw, (str, Mapping)):
            raise RouteError(f"expected route table text, got {type(raw).__name__}")
        return parse_routes(raw, ignore=self._ignore)


class _TableFile(BackgroundSource):
    """Polls a route file's modification time and size; sets ``live`` when they change."""

    def __init__(
        self,
        path: Path,
        live: Live[RouteTable],
        *,
        interval: float,
        on_problem: Callable[[str], None],
    ) -> None:
        if not interval > 0:
            raise ValueError("interval must be > 0 seconds")
        self.path = path
        self._live = live
        self._interval = interval
        self._on_problem = on_problem
        self._seen: tuple[int, int] | None = None

    def _stat(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def reload(self) -> None:
        self._seen = self._stat()
        try:
            text = self.path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            self._on_problem(
                f"{self.path}: cannot read it ({exc}); keeping the current route table"
            )
            return
        self._live.set(text, source=str(self.path))

    async def first(self) -> None:
        self.reload()

    async def follow(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if self._stat() != self._seen:
                self.reload()

    def __repr__(self) -> str:
        return f"route file {str(self.path)!r}"


def _log_rejection(rejection: Rejection) -> None:
    source = rejection.source or "set()"
    _log.error(
        "route table from %s rejected, keeping the current one: %s", source, rejection.reason
    )


def _log_problem(message: str) -> None:
    _log.warning("%s", message)
