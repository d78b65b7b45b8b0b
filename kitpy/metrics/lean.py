"""Counters and histograms that kitpy keeps and prometheus-client exports: cheap per call.

prometheus-client's ``Counter.inc`` runs ~4.5 k instructions and
``Histogram.observe`` ~8.4 k on the project's machine (a lock per value, a
Python loop over the buckets, checks per call); a request through
:func:`~kitpy.metrics.call_metrics` pays both.  :class:`LeanCounter` and
:class:`LeanHistogram` keep each child's values in plain attributes behind one
lock, find a bucket with :func:`bisect.bisect_left` (C), and cost ~2 k and ~3 k
(figures in docs/decisions.md).  Each registers itself on the
``CollectorRegistry`` it is given as a collector, so the registry and the
exposition (text format, OpenMetrics, ``metrics_handler``) stay
prometheus-client's, with the same samples as its own instruments:
``<name>_total`` and ``<name>_created`` for a counter; cumulative
``<name>_bucket{le=...}``, ``<name>_count``, ``<name>_sum`` and
``<name>_created`` for a histogram.  ``PROMETHEUS_DISABLE_CREATED_SERIES``
turns the ``_created`` samples off, as it does for prometheus-client's.

They satisfy :mod:`kitpy.metrics`' protocols and are what
:mod:`kitpy.metrics.prometheus` returns.  What they leave out of
prometheus-client's instruments: exemplars, ``time()`` and
``count_exceptions()`` helpers, and the multiprocess mode -- for that, build
prometheus-client's own instruments, which satisfy the same protocols.

Example::

    registry = CollectorRegistry()
    requests = LeanCounter(registry, "requests", "Calls.", ("method", "code"))
    requests.labels(method="uppercase", code="OK").inc()
    registry.get_sample_value("requests_total", {"method": "uppercase", "code": "OK"})  # 1.0
"""

from __future__ import annotations

from kitpy._extras import require

require("prometheus_client", extra="prometheus")

import math
import os
import re
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Generic, Self, TypeVar

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Sample

__all__ = ["LeanCounter", "LeanHistogram"]

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")

_Child = TypeVar("_Child", "_CounterChild", "_HistogramChild")


def _created_series() -> bool:
    """Whether ``_created`` samples are exported (prometheus-client's environment switch)."""
    flag = os.environ.get("PROMETHEUS_DISABLE_CREATED_SERIES", "False")
    return flag.lower() not in ("true", "1", "t")


def _go_float(value: float) -> str:
    """A bucket bound as Prometheus writes it: ``+Inf``, ``0.5``, ``1.0``."""
    return "+Inf" if value == math.inf else repr(float(value))


class _Series:
    """What a child shares: it has its labels already."""

    __slots__ = ()

    def labels(self, *values: str, **named: str) -> Self:
        """Refused (ValueError): a child has no labels of its own, as in prometheus-client."""
        raise ValueError("this is already the child for one set of label values")


class _CounterChild(_Series):
    """One counter series: its value behind a lock."""

    __slots__ = ("_lock", "created", "value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0.0
        self.created = time.time()

    def inc(self, amount: float = 1, /) -> None:
        """Add ``amount``; a negative amount is a ValueError (counters only go up)."""
        if amount < 0:
            raise ValueError(f"counters can only go up, not by {amount}")
        lock = self._lock
        lock.acquire()  # acquire/release: ~1 k instructions fewer than a with block
        self.value += amount
        lock.release()

    def read(self) -> float:
        with self._lock:
            return self.value


class _HistogramChild(_Series):
    """One histogram series: per-bucket counts (not cumulative) and the sum, behind a lock."""

    __slots__ = ("_bounds", "_counts", "_lock", "_sum", "created")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._lock = threading.Lock()
        self._bounds = bounds
        self._counts = [0] * len(bounds)
        self._sum = 0.0
        self.created = time.time()

    def observe(self, value: float, /) -> None:
        """Record ``value`` in the first bucket whose bound is >= it (the last is +Inf)."""
        # NaN is below no bound: it goes to +Inf, as in Prometheus' Go client
        index = bisect_left(self._bounds, value) if value == value else -1
        lock = self._lock
        lock.acquire()
        self._counts[index] += 1
        self._sum += value
        lock.release()

    def read(self) -> tuple[list[int], float]:
        """The per-bucket counts and the sum, read together."""
        with self._lock:
            return list(self._counts), self._sum


class _Family(Collector, Generic[_Child]):
    """A metric name, its help text and label names, with a child per label values."""

    _suffix = ""  # a suffix the name may be given with, dropped (the exposition adds it)

    def __init__(
        self,
        registry: CollectorRegistry,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        namespace: str = "",
        subsystem: str = "",
    ) -> None:
        name = name.removesuffix(self._suffix)
        full = "_".join(part for part in (namespace, subsystem, name) if part)
        if not _NAME.match(full):
            raise ValueError(f"invalid metric name {full!r}")
        for label in labelnames:
            if not _LABEL.match(label) or label.startswith("__"):
                raise ValueError(f"invalid label name {label!r} for {full}")
        if len(set(labelnames)) != len(labelnames):
            raise ValueError(f"{full}: label names repeat: {list(labelnames)}")
        self.name = full
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], _Child] = {}
        self._lock = threading.Lock()  # guards _children's growth
        self._created = _created_series()
        self._unlabelled: _Child | None = None if labelnames else self._new_child()
        if self._unlabelled is not None:
            self._children[()] = self._unlabelled
        registry.register(self)

    def _new_child(self) -> _Child:
        raise NotImplementedError

    def labels(self, *values: str, **named: str) -> _Child:
        """The child for these label values (by name, or all by position), made once.

        Resolve it once and keep it where the values are known up front.
        """
        if not self.labelnames:
            raise ValueError(f"{self.name} has no labels")
        if named:
            if values or set(named) != set(self.labelnames):
                raise ValueError(
                    f"{self.name}: labels must be exactly {list(self.labelnames)}, "
                    f"got {sorted(named)}"
                )
            key = tuple(str(named[n]) for n in self.labelnames)
        else:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name}: expected {len(self.labelnames)} label values")
            key = tuple(str(v) for v in values)
        child = self._children.get(key)
        if child is None:
            with self._lock:
                child = self._children.get(key)
                if child is None:
                    child = self._children[key] = self._new_child()
        return child

    def _own(self) -> _Child:
        if self._unlabelled is None:
            raise ValueError(f"{self.name} has labels {list(self.labelnames)}: use .labels(...)")
        return self._unlabelled

    def _series(self) -> list[tuple[tuple[str, ...], _Child]]:
        with self._lock:
            return list(self._children.items())

    def _family(self) -> Metric:
        raise NotImplementedError

    def describe(self) -> Iterable[Metric]:
        """The family without samples: how the registry learns the names it owns."""
        return [self._family()]


class LeanCounter(_Family[_CounterChild]):
    """A counter registered on ``registry`` (exported as ``<name>_total``).

    ``name`` may end in ``_total`` (it is dropped, as prometheus-client does);
    ``namespace`` and ``subsystem`` are prefixed with underscores.

    Example::

        errors = LeanCounter(registry, "errors", "Errors seen.")
        errors.inc()
    """

    _suffix = "_total"

    def _new_child(self) -> _CounterChild:
        return _CounterChild()

    def inc(self, amount: float = 1, /) -> None:
        """Add ``amount`` to an unlabelled counter."""
        self._own().inc(amount)

    def _family(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterable[Metric]:
        """The family with one ``_total`` (and ``_created``) sample per child."""
        family = self._family()
        created = self._created
        for key, child in self._series():
            family.add_metric(key, child.read(), child.created if created else None)
        return [family]


class LeanHistogram(_Family[_HistogramChild]):
    """A histogram registered on ``registry``; ``buckets`` are upper bounds, +Inf added.

    Example::

        latency = LeanHistogram(registry, "seconds", "Call time.", buckets=(0.01, 0.1, 1.0))
        latency.observe(0.02)
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        namespace: str = "",
        subsystem: str = "",
        buckets: Sequence[float],
    ) -> None:
        bounds = [float(b) for b in buckets]
        if bounds != sorted(bounds):
            raise ValueError(f"buckets must be in increasing order, got {list(buckets)}")
        if not bounds or bounds[-1] != math.inf:
            bounds.append(math.inf)
        if len(bounds) < 2:
            raise ValueError("a histogram needs at least one bucket below +Inf")
        if "le" in labelnames:
            raise ValueError("'le' is the bucket label of a histogram; use another label name")
        self.bounds = tuple(bounds)
        self._le = tuple(_go_float(b) for b in bounds)
        super().__init__(
            registry, name, documentation, labelnames, namespace=namespace, subsystem=subsystem
        )

    def _new_child(self) -> _HistogramChild:
        return _HistogramChild(self.bounds)

    def observe(self, value: float, /) -> None:
        """Record ``value`` in an unlabelled histogram."""
        self._own().observe(value)

    def _family(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterable[Metric]:
        """The family: cumulative buckets, count, sum (and ``_created``) per child."""
        family = self._family()
        for key, child in self._series():
            counts, total = child.read()
            cumulative, buckets = 0, []
            for le, count in zip(self._le, counts, strict=True):
                cumulative += count
                buckets.append((le, float(cumulative)))
            family.add_metric(key, buckets, total)
            if self._created:
                labels = dict(zip(self.labelnames, key, strict=True))
                family.samples.append(Sample(f"{self.name}_created", labels, child.created))
        return [family]
