"""The instrument protocols: Counter, Gauge and Histogram, with labels.

prometheus-client's ``Counter``, ``Gauge`` and ``Histogram`` satisfy these as
they are, as do kitpy's :mod:`kitpy.metrics.lean` instruments (what
:mod:`kitpy.metrics.prometheus` builds) and :mod:`kitpy.metrics.memory`'s.
``labels(**values)`` returns the child instrument for one set of label values;
resolve it once and keep it where the values are known up front.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Counter", "Gauge", "Histogram"]


class Counter(Protocol):
    """A value that only goes up, e.g. requests served."""

    def labels(self, **values: str) -> Counter:
        """The child counter for these label values."""
        ...

    def inc(self, amount: float = 1, /) -> None:
        """Add ``amount`` (not negative)."""
        ...


class Gauge(Protocol):
    """A value that goes up and down, e.g. requests in flight."""

    def labels(self, **values: str) -> Gauge:
        """The child gauge for these label values."""
        ...

    def set(self, value: float, /) -> None:
        """Set the value."""
        ...

    def inc(self, amount: float = 1, /) -> None:
        """Add ``amount``."""
        ...

    def dec(self, amount: float = 1, /) -> None:
        """Subtract ``amount``."""
        ...


class Histogram(Protocol):
    """A distribution of observed values, e.g. request latency in seconds."""

    def labels(self, **values: str) -> Histogram:
        """The child histogram for these label values."""
        ...

    def observe(self, value: float, /) -> None:
        """Record one observation."""
        ...
