"""Live settings from a TOML file, re-read when the file changes.

:class:`FileSettings` polls the file's modification time and size (every
``interval`` seconds; no inotify dependency, and it works on any filesystem a
container mounts).  Keys are the live settings' names, dotted for tables::

    rate_limit = 5
    [breaker]
    failure_ratio = 0.5

A file that cannot be read or is not valid TOML is reported and the current
values stay; a deleted file returns every setting to its static value.
"""

from __future__ import annotations

import asyncio
import os
import tomllib
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from kitpy.config.live import Live
from kitpy.config.sources import BackgroundSource, apply_snapshot, log_problem

__all__ = ["FileSettings"]


class FileSettings(BackgroundSource):
    """Keep ``settings`` (live settings by name) in step with a TOML file.

    >>> async def main(path):                               # doctest: +SKIP
    ...     rate = Live(None, name="rate_limit", type=float | None)
    ...     async with FileSettings(path, {"rate_limit": rate}):
    ...         ...  # rate.value follows the file's rate_limit
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        settings: Mapping[str, Live[Any]],
        *,
        interval: float = 1.0,
        on_problem: Callable[[str], None] = log_problem,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not interval > 0:
            raise ValueError("interval must be > 0 seconds")
        self.path = Path(path)
        self._settings = settings
        self._interval = interval
        self._on_problem = on_problem
        self._sleep = sleep
        self._seen: tuple[int, int] | None = None

    def reload(self) -> None:
        """Read the file now and apply it (sources call this on every change)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._seen = None
            apply_snapshot(self._settings, {}, source=str(self.path), on_problem=self._on_problem)
            return
        except OSError as exc:
            self._on_problem(f"{self.path}: cannot read ({exc.strerror}); keeping current values")
            return
        self._seen = (stat.st_mtime_ns, stat.st_size)
        try:
            data = tomllib.loads(self.path.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            self._on_problem(f"{self.path}: not valid TOML ({exc}); keeping current values")
            return
        values = dict(_flatten(data, ""))
        apply_snapshot(self._settings, values, source=str(self.path), on_problem=self._on_problem)

    async def first(self) -> None:
        """Apply the file once, before :meth:`start` returns."""
        self.reload()

    def __repr__(self) -> str:
        return f"FileSettings({str(self.path)!r})"

    async def follow(self) -> None:
        """Poll the file and re-apply it when it changed."""
        while True:
            await self._sleep(self._interval)
            try:
                stat = self.path.stat()
                seen: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
            except OSError:
                seen = None
            if seen != self._seen:
                self.reload()


def _flatten(table: Mapping[str, Any], prefix: str) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for key, value in table.items():
        if isinstance(value, dict):
            out.extend(_flatten(value, f"{prefix}{key}."))
        else:
            out.append((f"{prefix}{key}", value))
    return out
