"""In-memory instruments with readable values, for tests and examples.

They satisfy :mod:`kitpy.metrics`' protocols and behave like prometheus-client's
on labels: a labelled instrument must be used through ``labels(...)`` with
exactly its label names, and the same values always give the same child.

Example::

    requests = MemoryCounter("requests_total", labelnames=("method", "code"))
    requests.labels(method="uppercase", code="OK").inc()
    assert requests.value(method="uppercase", code="OK") == 1
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Generic, TypeVar

__all__ = ["MemoryCounter", "MemoryGauge", "MemoryHistogram"]

LabelValues = tuple[str, ...]
_Child = TypeVar("_Child")


class _Instrument(Generic[_Child]):
    """Shared label handling: a parent with named labels and a child per value tuple."""

    def __init__(self, name: str, *, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.labelnames = tuple(labelnames)
        self._children: dict[LabelValues, _Child] = {}
        self._label_values: LabelValues = ()

    def _new_child(self) -> _Child:
        raise NotImplementedError

    def _key(self, values: dict[str, str]) -> LabelValues:
        if set(values) != set(self.labelnames):
            raise ValueError(
                f"{self.name}: labels must be exactly {list(self.labelnames)}, got {sorted(values)}"
            )
        return tuple(str(values[n]) for n in self.labelnames)

    def _child(self, **values: str) -> _Child:
        if not self.labelnames:
            raise ValueError(f"{self.name} has no labels")
        key = self._key(values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._new_child()
        return child

    def _own(self, **values: str) -> _Child:
        """The child for ``values``, or ``self`` for an instrument without labels."""
        if not self.labelnames:
            if values:
                raise ValueError(f"{self.name} has no labels")
            return self._self_child()
        return self._children.get(self._key(values)) or self._new_child()

    def _self_child(self) -> _Child:
        raise NotImplementedError

    def _check_unlabelled(self) -> None:
        if self.labelnames:
            raise ValueError(f"{self.name} has labels {list(self.labelnames)}: use .labels(...)")

    def children(self) -> Iterator[tuple[dict[str, str], _Child]]:
        """Every child so far, with its labels as a dict."""
        for key, child in self._children.items():
            yield dict(zip(self.labelnames, key, strict=True)), child


class MemoryCounter(_Instrument["MemoryCounter"]):
    """A counter; read it with :meth:`value`."""

    def __init__(self, name: str = "counter", *, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, labelnames=labelnames)
        self.count = 0.0

    def _new_child(self) -> MemoryCounter:
        return MemoryCounter(self.name)

    def _self_child(self) -> MemoryCounter:
        return self

    def labels(self, **values: str) -> MemoryCounter:
        """The child counter for these label values."""
        return self._child(**values)

    def inc(self, amount: float = 1, /) -> None:
        """Add ``amount``; negative amounts are an error, as in Prometheus."""
        self._check_unlabelled()
        if amount < 0:
            raise ValueError("counters can only go up")
        self.count += amount

    def value(self, **labels: str) -> float:
        """The count for these label values (0 if never incremented)."""
        return self._own(**labels).count

    def total(self) -> float:
        """The sum over every child (or the value of an unlabelled counter)."""
        if not self.labelnames:
            return self.count
        return sum(child.count for child in self._children.values())


class MemoryGauge(_Instrument["MemoryGauge"]):
    """A gauge; read it with :meth:`value`."""

    def __init__(self, name: str = "gauge", *, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, labelnames=labelnames)
        self.current = 0.0

    def _new_child(self) -> MemoryGauge:
        return MemoryGauge(self.name)

    def _self_child(self) -> MemoryGauge:
        return self

    def labels(self, **values: str) -> MemoryGauge:
        """The child gauge for these label values."""
        return self._child(**values)

    def set(self, value: float, /) -> None:
        """Set the value."""
        self._check_unlabelled()
        self.current = float(value)

    def inc(self, amount: float = 1, /) -> None:
        """Add ``amount``."""
        self._check_unlabelled()
        self.current += amount

    def dec(self, amount: float = 1, /) -> None:
        """Subtract ``amount``."""
        self._check_unlabelled()
        self.current -= amount

    def value(self, **labels: str) -> float:
        """The value for these label values (0 if never set)."""
        return self._own(**labels).current


class MemoryHistogram(_Instrument["MemoryHistogram"]):
    """A histogram that keeps every observation; read them with :meth:`observations`."""

    def __init__(self, name: str = "histogram", *, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, labelnames=labelnames)
        self.values: list[float] = []

    def _new_child(self) -> MemoryHistogram:
        return MemoryHistogram(self.name)

    def _self_child(self) -> MemoryHistogram:
        return self

    def labels(self, **values: str) -> MemoryHistogram:
        """The child histogram for these label values."""
        return self._child(**values)

    def observe(self, value: float, /) -> None:
        """Record one observation."""
        self._check_unlabelled()
        self.values.append(float(value))

    def observations(self, **labels: str) -> list[float]:
        """Every value observed for these label values, in order."""
        return list(self._own(**labels).values)

    def count(self, **labels: str) -> int:
        """How many values were observed for these label values."""
        return len(self._own(**labels).values)

    def sum(self, **labels: str) -> float:
        """The sum of the values observed for these label values."""
        return sum(self._own(**labels).values)
