"""settle_heap: start-up's objects frozen out of the collector's sight, a higher young threshold."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from kitpy.lifecycle.heap import YOUNG_THRESHOLD, settle_heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_settle_heap_freezes_what_is_alive_and_raises_the_young_threshold() -> None:
    _, middle, old = gc.get_threshold()
    kept = [object(), {"alive": "at start-up"}]
    settle_heap()
    assert gc.get_freeze_count() > len(kept)
    assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, old)  # only the young one changes


@pytest.mark.usefixtures("restored_gc")
def test_cyclic_garbage_made_later_is_still_collected() -> None:
    settle_heap(young_threshold=50)

    class Node:
        def __init__(self) -> None:
            self.me = self

    collected: list[int] = []
    gc.callbacks.append(lambda phase, info: collected.append(info["collected"]))
    try:
        for _ in range(1000):
            Node()  # a cycle: only the collector frees it
    finally:
        gc.callbacks.pop()
    assert sum(collected) > 0


def test_a_threshold_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        settle_heap(young_threshold=0)
