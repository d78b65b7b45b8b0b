"""Context: immutability, typed keys, deadlines."""

from __future__ import annotations

import pytest

from kitpy import Context, Key
from kitpy.context import REQUEST_ID, REQUEST_ID_SOURCE


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


def test_derived_key_is_computed_when_absent_and_set_values_win() -> None:
    user: Key[str] = Key("user")
    greeting: Key[str] = Key("greeting", derive=lambda c: f"hi {c[user]}" if user in c else None)
    ctx = Context().with_value(user, "ada")
    assert ctx[greeting] == "hi ada"
    assert ctx.get(greeting) == "hi ada"
    assert greeting in ctx
    assert ctx.with_value(user, "bob")[greeting] == "hi bob"  # computed from the child's values
    assert ctx.with_value(greeting, "set")[greeting] == "set"  # a value of its own wins
    root = Context()  # derive says None: absent
    assert greeting not in root
    assert root.get(greeting, "none") == "none"
    with pytest.raises(KeyError, match="greeting"):
        root[greeting]


def test_request_id_comes_from_the_transports_source() -> None:
    calls: list[Context] = []

    def source(ctx: Context) -> str:
        calls.append(ctx)
        return "made"

    ctx = Context().with_value(REQUEST_ID_SOURCE, source)
    assert ctx[REQUEST_ID] == "made"
    assert ctx.with_value(REQUEST_ID, "given")[REQUEST_ID] == "given"  # no source call
    assert len(calls) == 1
    assert REQUEST_ID not in Context()
