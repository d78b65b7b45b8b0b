"""Applying one snapshot of raw values to a group of live settings.

Both live sources use it: the file source after each re-read, the etcd source
after each (re)connection.  A setting present in the snapshot is set (and may
be rejected), one absent returns to its static value, and a key no setting
claims is reported rather than ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from kitpy.config.live import Live

__all__ = ["apply_snapshot", "log_problem"]

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
