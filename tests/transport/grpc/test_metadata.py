"""Metadata helpers, without a network."""

from __future__ import annotations

import pytest

from kitpy import Context, Key
from kitpy.transport.grpc import (
    context_to_metadata,
    context_to_response_metadata,
    metadata_from_pairs,
    metadata_to_context,
    metadata_to_pairs,
    response_metadata_to_context,
    set_response_metadata,
)

NAME: Key[str] = Key("name")
BLOB: Key[bytes] = Key("blob")


def test_pairs_are_lower_cased_and_bin_values_are_bytes() -> None:
    pairs = metadata_to_pairs({"X-Tenant": "acme", "X-Trace-Bin": "é", "raw-bin": b"\x00"})
    assert pairs == (("x-tenant", "acme"), ("x-trace-bin", "é".encode()), ("raw-bin", b"\x00"))


def test_bytes_under_a_plain_key_is_a_clear_type_error() -> None:
    with pytest.raises(TypeError, match="ending in '-bin'"):
        metadata_to_pairs({"x-blob": b"\x00"})


def test_from_pairs_lower_cases_and_last_repeat_wins() -> None:
    assert metadata_from_pairs([("A", "1"), ("a", "2"), ("b-bin", b"x")]) == {
        "a": "2",
        "b-bin": b"x",
    }
    assert metadata_from_pairs(None) == {}


def test_server_before_copies_present_values_only() -> None:
    before = metadata_to_context("X-Name", NAME)
    ctx = before(Context(), {"x-name": "ada"})
    assert ctx[NAME] == "ada"
    empty = Context()
    assert before(empty, {}) is empty


def test_client_before_sends_context_value() -> None:
    outgoing: dict[str, str | bytes] = {}
    ctx = Context().with_value(BLOB, b"\x01")
    assert context_to_metadata(BLOB, "Blob-Bin")(ctx, outgoing) is ctx
    context_to_metadata(NAME, "x-name")(ctx, outgoing)  # absent: nothing sent
    assert outgoing == {"blob-bin": b"\x01"}


def test_server_after_helpers_fill_initial_or_trailing() -> None:
    initial: dict[str, str | bytes] = {}
    trailing: dict[str, str | bytes] = {}
    ctx = Context().with_value(NAME, "ada")
    ctx = context_to_response_metadata(NAME, "X-Name")(ctx, initial, trailing)
    ctx = set_response_metadata("x-sum-bin", b"\xff", trailing=True)(ctx, initial, trailing)
    assert initial == {"x-name": "ada"}
    assert trailing == {"x-sum-bin": b"\xff"}


def test_client_after_prefers_initial_then_trailing() -> None:
    after = response_metadata_to_context("x-name", NAME)
    assert after(Context(), {"x-name": "a"}, {"x-name": "b"})[NAME] == "a"
    assert after(Context(), {}, {"x-name": "b"})[NAME] == "b"
    assert NAME not in after(Context(), {}, {})
