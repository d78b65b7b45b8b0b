"""kitpy.metrics.memory: readable in-memory instruments that behave like Prometheus's on labels."""

from __future__ import annotations

import pytest

from kitpy.metrics import Counter, Gauge, Histogram
from kitpy.metrics.memory import MemoryCounter, MemoryGauge, MemoryHistogram


def test_counter_children_are_cached_and_readable() -> None:
    counter = MemoryCounter("requests", labelnames=("method", "code"))
    child = counter.labels(method="a", code="OK")
    assert counter.labels(code="OK", method="a") is child
    child.inc()
    child.inc(2)
    counter.labels(method="b", code="OK").inc()
    assert counter.value(method="a", code="OK") == 3
    assert counter.value(method="zzz", code="OK") == 0
    assert counter.total() == 4
    assert {labels["method"]: c.count for labels, c in counter.children()} == {
        "a": 3,
        "b": 1,
    }


def test_labels_must_match_exactly() -> None:
    counter = MemoryCounter("requests", labelnames=("method",))
    with pytest.raises(ValueError, match="exactly"):
        counter.labels(method="a", extra="x")
    with pytest.raises(ValueError, match=r"use \.labels"):
        counter.inc()
    plain = MemoryCounter("plain")
    with pytest.raises(ValueError, match="no labels"):
        plain.labels(method="a")
    with pytest.raises(ValueError, match="only go up"):
        plain.inc(-1)


def test_gauge_and_histogram() -> None:
    gauge = MemoryGauge("in_flight")
    gauge.inc()
    gauge.inc(2)
    gauge.dec()
    assert gauge.value() == 2
    gauge.set(7.5)
    assert gauge.value() == 7.5
    hist = MemoryHistogram("latency", labelnames=("method",))
    hist.labels(method="a").observe(0.5)
    hist.labels(method="a").observe(1.5)
    assert hist.observations(method="a") == [0.5, 1.5]
    assert hist.count(method="a") == 2
    assert hist.sum(method="a") == 2.0
    assert hist.count(method="b") == 0


def test_memory_instruments_satisfy_the_protocols() -> None:
    counter: Counter = MemoryCounter("c", labelnames=("x",))
    gauge: Gauge = MemoryGauge("g", labelnames=("x",))
    hist: Histogram = MemoryHistogram("h", labelnames=("x",))
    counter.labels(x="1").inc()
    gauge.labels(x="1").set(3)
    hist.labels(x="1").observe(0.1)
    assert isinstance(counter, MemoryCounter)
    assert counter.value(x="1") == 1
