"""kitpy.metrics.lean: the same exposition as prometheus-client's instruments, at less cost."""

from __future__ import annotations

import math
import threading

import prometheus_client
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from kitpy.metrics.lean import LeanCounter, LeanHistogram
from kitpy.metrics.prometheus import LATENCY_BUCKETS


def _exposition(registry: CollectorRegistry) -> list[str]:
    """The text format's lines without the ``_created`` ones (creation times differ)."""
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if "_created" not in line]


seconds = st.floats(min_value=0, max_value=20, allow_nan=False)
labelled = st.lists(st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["OK", "X"]), seconds))


@settings(max_examples=60, deadline=None)
@given(labelled)
def test_exposition_matches_prometheus_clients(calls: list[tuple[str, str, float]]) -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    names = ("method", "code")
    their_count = prometheus_client.Counter("calls", "Calls.", names, registry=theirs)
    their_time = prometheus_client.Histogram(
        "took", "Time.", names, registry=theirs, buckets=LATENCY_BUCKETS
    )
    our_count = LeanCounter(ours, "calls", "Calls.", names)
    our_time = LeanHistogram(ours, "took", "Time.", names, buckets=LATENCY_BUCKETS)
    for method, code, took in calls:
        their_count.labels(method=method, code=code).inc()
        their_time.labels(method, code).observe(took)
        our_count.labels(method=method, code=code).inc()
        our_time.labels(method, code).observe(took)
    assert _exposition(ours) == _exposition(theirs)


def test_created_samples_and_the_switch_that_turns_them_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = CollectorRegistry()
    LeanCounter(registry, "c_total", "C.").inc(2)
    LeanHistogram(registry, "h", "H.", buckets=(1.0,)).observe(0.5)
    assert registry.get_sample_value("c_total") == 2  # "_total" in the name is not doubled
    assert registry.get_sample_value("c_created") is not None
    assert registry.get_sample_value("h_created") is not None
    monkeypatch.setenv("PROMETHEUS_DISABLE_CREATED_SERIES", "true")
    quiet = CollectorRegistry()
    LeanCounter(quiet, "c", "C.").inc()
    LeanHistogram(quiet, "h", "H.", buckets=(1.0,)).observe(0.5)
    assert quiet.get_sample_value("c_created") is None
    assert quiet.get_sample_value("h_created") is None
    assert quiet.get_sample_value("h_count") == 1


def test_buckets_count_values_at_their_bound_and_nan_in_inf() -> None:
    registry = CollectorRegistry()
    h = LeanHistogram(registry, "h", "H.", buckets=(0.1, 1.0))
    for value in (0.1, 0.5, 1.0, 7.0, math.nan):
        h.observe(value)

    def bucket(le: str) -> float | None:
        return registry.get_sample_value("h_bucket", {"le": le})

    assert (bucket("0.1"), bucket("1.0"), bucket("+Inf")) == (1, 3, 5)
    assert registry.get_sample_value("h_count") == 5


def test_updates_from_many_threads_are_all_counted() -> None:
    registry = CollectorRegistry()
    c = LeanCounter(registry, "c", "C.", ("k",))
    h = LeanHistogram(registry, "h", "H.", ("k",), buckets=(0.5,))

    def work() -> None:
        count, time = c.labels(k="x"), h.labels(k="x")
        for _ in range(20_000):
            count.inc()
            time.observe(0.25)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert registry.get_sample_value("c_total", {"k": "x"}) == 80_000
    assert registry.get_sample_value("h_count", {"k": "x"}) == 80_000
    assert registry.get_sample_value("h_sum", {"k": "x"}) == 20_000


def test_misuse_is_refused_with_a_message() -> None:
    registry = CollectorRegistry()
    c = LeanCounter(registry, "c", "C.", ("method",))
    with pytest.raises(ValueError, match="exactly \\['method'\\]"):
        c.labels(route="x")
    with pytest.raises(ValueError, match="expected 1 label values"):
        c.labels("a", "b")
    with pytest.raises(ValueError, match=r"use \.labels"):
        c.inc()
    with pytest.raises(ValueError, match="only go up"):
        c.labels(method="m").inc(-1)
    with pytest.raises(ValueError, match="has no labels"):
        LeanCounter(registry, "d", "D.").labels(x="1")
    with pytest.raises(ValueError, match="Duplicated"):
        LeanCounter(registry, "c", "Again.")
    with pytest.raises(ValueError, match="invalid metric name"):
        LeanCounter(registry, "1c", "C.")
    with pytest.raises(ValueError, match="invalid label name"):
        LeanCounter(registry, "e", "E.", ("bad-name",))
    with pytest.raises(ValueError, match="bucket label"):
        LeanHistogram(registry, "h", "H.", ("le",), buckets=(1.0,))
    with pytest.raises(ValueError, match="increasing"):
        LeanHistogram(registry, "h2", "H.", buckets=(1.0, 0.5))


def test_children_are_made_once_and_the_family_describes_its_name() -> None:
    registry = CollectorRegistry()
    c = LeanCounter(registry, "c", "C.", ("a", "b"))
    assert c.labels(a="1", b="2") is c.labels("1", "2")
    assert [m.name for m in c.describe()] == ["c"]


def test_a_child_has_no_labels_of_its_own() -> None:
    child = LeanCounter(CollectorRegistry(), "c", "C.", ("a",)).labels(a="1")
    with pytest.raises(ValueError, match="already the child"):
        child.labels(a="2")
