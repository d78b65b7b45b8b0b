"""RollingCounter and RetryBudget on virtual time."""

from __future__ import annotations

import pytest

from kitpy.resilience import RetryBudget
from kitpy.testing import FakeClock
from kitpy.window import RollingCounter


def test_rolling_counter_forgets_old_slots() -> None:
    counter = RollingCounter(window=10.0, slots=10)
    counter.add(100.0)
    counter.add(100.5, 2)
    counter.add(105.0)
    assert counter.total(105.0) == 4
    assert counter.total(110.5) == 1  # the slot of t=100 has left the window
    assert counter.total(116.0) == 0
    counter.add(200.0)
    assert counter.total(200.0) == 1
    counter.reset()
    assert counter.total(200.0) == 0


def test_rolling_counter_validates() -> None:
    with pytest.raises(ValueError, match="window"):
        RollingCounter(window=0)
    with pytest.raises(ValueError, match="slots"):
        RollingCounter(window=1, slots=0)


def test_budget_allows_ratio_of_requests_plus_floor() -> None:
    clock = FakeClock()
    budget = RetryBudget(ratio=0.5, min_per_second=0.2, window=10.0, clock=clock)
    assert budget.floor == pytest.approx(2.0)
    for _ in range(4):
        budget.deposit()
    # 0.5 * 4 + 2 = 4 retries
    assert [budget.try_withdraw() for _ in range(5)] == [True, True, True, True, False]
    assert budget.remaining() == pytest.approx(0.0)
    clock.advance(11.0)  # everything left the window: only the floor again
    assert budget.remaining() == pytest.approx(2.0)
    assert budget.try_withdraw()


def test_budget_with_no_floor_refuses_until_requests_arrive() -> None:
    budget = RetryBudget(ratio=0.1, min_per_second=0, clock=FakeClock())
    assert not budget.try_withdraw()
    for _ in range(10):
        budget.deposit()
    assert budget.try_withdraw()
    assert not budget.try_withdraw()


def test_budget_validates() -> None:
    with pytest.raises(ValueError, match="ratio"):
        RetryBudget(ratio=-1)
    with pytest.raises(ValueError, match="min_per_second"):
        RetryBudget(min_per_second=-1)
