"""What the live sources share: applying a snapshot of raw values, and running in the background.

:func:`apply_snapshot` is used by the file source after each re-read and by the
etcd source after each (re)connection: a setting present in the snapshot is
set (and may be rejected), one absent returns to its static value, and a key
no setting claims is reported rather than ignored.  :class:`BackgroundSource`
is their start / close / ``async with`` life cycle around one task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any, Self

from kitpy.config.live import Live

__all__ = ["BackgroundSource", "apply_snapshot", "log_problem"]

_log = logging.getLogger("kitpy.config")


def apply_snapshot(
    settings: Mapping[str, Live[Any]],
    values: Mapping[str, object],
    *,
    source: str,
    on_problem: Callable[[str], None],
) -> None:
    """Make every live setting follow ``values`` (keyed by setting name).

    >>> rate = Live(10, name="rate")
    >>> apply_snapshot({"rate": rate}, {"rate": "5"}, source="demo", on_problem=print)
    >>> rate.value
    5
    >>> apply_snapshot({"rate": rate}, {"burst": "3"}, source="demo", on_problem=print)
    demo: burst is not a live setting (live: rate)
    >>> rate.value  # absent from the snapshot: back to the static value
    10
    """
    for name in values:
        if name not in settings:
            on_problem(f"{source}: {name} is not a live setting (live: {', '.join(settings)})")
    for name, live in settings.items():
        if name in values:
            live.set(values[name], source=source)
        else:
            live.reset()


def log_problem(message: str) -> None:
    """The default problem reporter: a warning on the ``kitpy.config`` logger."""
    _log.warning("%s", message)


class BackgroundSource:
    """A live source that follows its origin in one background task.

    Subclasses implement :meth:`follow` (runs until cancelled) and may
    override :meth:`first` (runs before :meth:`start` returns).
    """

    _task: asyncio.Task[None] | None = None

    async def first(self) -> None:
        """Work done before :meth:`start` returns (default: none)."""

    async def follow(self) -> None:
        """Follow the origin until cancelled."""
        raise NotImplementedError

    async def start(self) -> None:
        """Run :meth:`first`, then :meth:`follow` in the background."""
        await self.first()
        if self._task is None:
            self._task = asyncio.create_task(self.follow(), name=f"kitpy.config {self!r}")

    async def close(self) -> None:
        """Stop following (the settings keep their current values)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
