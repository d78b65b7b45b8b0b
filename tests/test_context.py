"""Context: immutability, typed keys, deadlines."""

from __future__ import annotations

import pytest

from kitpy import Context, Key


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_with_value_returns_new_context_and_leaves_parent_untouched() -> None:
    key: Key[str] = Key("user")
    root = Context()
    child = root.with_value(key, "ada")
    assert child is not root
    assert child[key] == "ada"
    assert root.get(key) is None
    assert key not in root
    assert key in child


def test_values_are_immutable() -> None:
    ctx: object = Context()
    with pytest.raises(AttributeError):
        ctx.foo = 1  # type: ignore[attr-defined]


def test_keys_compare_by_identity_not_name() -> None:
    a: Key[int] = Key("n")
    b: Key[int] = Key("n")
    ctx = Context().with_value(a, 1)
    assert ctx.get(b) is None
    assert ctx[a] == 1
    assert repr(a) == "Key('n')"


def test_get_default_and_getitem_keyerror_names_key() -> None:
    key: Key[int] = Key("answer")
    ctx = Context()
    assert ctx.get(key, 42) == 42
    with pytest.raises(KeyError, match="answer"):
        ctx[key]


def test_child_overrides_value_parent_keeps_old() -> None:
    key: Key[int] = Key("n")
    parent = Context().with_value(key, 1)
    child = parent.with_value(key, 2)
    assert (parent[key], child[key]) == (1, 2)


def test_with_values_sets_several() -> None:
    a: Key[int] = Key("a")
    b: Key[str] = Key("b")
    ctx = Context().with_values({a: 1, b: "x"})
    assert (ctx[a], ctx[b]) == (1, "x")


def test_root_has_no_deadline() -> None:
    ctx = Context()
    assert ctx.deadline is None
    assert ctx.time_remaining() is None
    assert not ctx.expired


def test_with_timeout_and_time_remaining_decreases() -> None:
    clock = FakeClock()
    ctx = Context(clock=clock).with_timeout(2.0)
    assert ctx.deadline == pytest.approx(102.0)
    assert ctx.time_remaining() == pytest.approx(2.0)
    expired = [ctx.expired]
    clock.now += 0.5
    assert ctx.time_remaining() == pytest.approx(1.5)
    expired.append(ctx.expired)
    clock.now += 1.5
    expired.append(ctx.expired)
    assert expired == [False, False, True]
    assert ctx.time_remaining() == 0.0
    clock.now += 10
    assert ctx.time_remaining() == 0.0


def test_child_never_extends_parent_deadline() -> None:
    clock = FakeClock()
    parent = Context(clock=clock).with_timeout(1.0)
    longer = parent.with_timeout(5.0)
    assert longer.deadline == parent.deadline
    later = parent.with_deadline(200.0)
    assert later.deadline == parent.deadline
    shorter = parent.with_timeout(0.25)
    assert shorter.deadline == pytest.approx(100.25)
    assert parent.deadline == pytest.approx(101.0)


def test_values_survive_deadline_changes_and_clock_is_inherited() -> None:
    clock = FakeClock()
    key: Key[str] = Key("k")
    ctx = Context(clock=clock).with_value(key, "v").with_timeout(1).with_value(key, "w")
    assert ctx[key] == "w"
    assert ctx.clock is clock
    assert ctx.time_remaining() == pytest.approx(1.0)


def test_real_clock_deadline_counts_down() -> None:
    ctx = Context().with_timeout(10.0)
    first = ctx.time_remaining()
    assert first is not None
    assert 9.0 < first <= 10.0
    second = ctx.time_remaining()
    assert second is not None
    assert second <= first


def test_repr_lists_keys() -> None:
    key: Key[int] = Key("tenant")
    assert "tenant" in repr(Context().with_value(key, 1))
