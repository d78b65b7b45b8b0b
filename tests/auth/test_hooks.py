"""Bearer-token transport hooks, called directly with the shapes the transports pass."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from kitpy import Context
from kitpy.auth import (
    BASIC_CREDENTIALS,
    TOKEN,
    DuplicateAuthorization,
    authorization_header,
    basic_http_to_context,
    bearer_token,
    context_to_grpc,
    context_to_http,
    context_to_message,
    grpc_to_context,
    http_to_context,
    message_to_context,
)
from kitpy.transport.grpc import INVOCATION_PAIRS


class FakeRequest:
    """Only what the hook reads: ``headers`` (aiohttp gives a CIMultiDictProxy)."""

    def __init__(self, *pairs: tuple[str, str], **headers: str) -> None:
        self.headers = CIMultiDictProxy(CIMultiDict([*pairs, *headers.items()]))


@pytest.mark.parametrize(
    ("value", "token"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc", "abc"),
        ("BEARER   abc  ", "abc"),
        ("Basic dXNlcjpwdw==", None),
        ("Bearer", None),
        ("Bearer    ", None),
        ("Token abc", None),
        ("", None),
        (b"Bearer abc", None),
        (None, None),
    ],
)
def test_bearer_token(value: str | bytes | None, token: str | None) -> None:
    assert bearer_token(value) == token


def test_http_to_context_reads_authorization_case_insensitively() -> None:
    ctx = http_to_context(Context(), FakeRequest(authorization="bEaReR t1"))
    assert ctx[TOKEN] == "t1"
    plain = Context()
    assert http_to_context(plain, FakeRequest(Authorization="Basic x")) is plain


def test_grpc_to_context() -> None:
    assert grpc_to_context(Context(), {"authorization": "Bearer t2"})[TOKEN] == "t2"
    assert TOKEN not in grpc_to_context(Context(), {"x-other": "Bearer t2"})


def test_two_authorization_headers_raise_in_every_http_hook() -> None:
    twice = FakeRequest(("Authorization", "Bearer a"), ("authorization", "Basic eDp5"))
    for hook in (http_to_context, basic_http_to_context):
        with pytest.raises(DuplicateAuthorization):
            hook(Context(), twice)
    with pytest.raises(DuplicateAuthorization):
        authorization_header(twice)
    assert authorization_header(FakeRequest(Authorization="Bearer a")) == "Bearer a"
    assert authorization_header(FakeRequest()) is None
    assert (
        basic_http_to_context(Context(), FakeRequest(Authorization="Basic eDp5"))[BASIC_CREDENTIALS]
        == "eDp5"
    )


def test_grpc_to_context_counts_the_raw_pairs_not_the_collapsed_mapping() -> None:
    pairs = (("authorization", "Bearer first"), ("x-other", "1"), ("authorization", "Bearer last"))
    ctx = Context().with_value(INVOCATION_PAIRS, pairs)
    with pytest.raises(DuplicateAuthorization):
        grpc_to_context(ctx, dict(pairs))  # the mapping alone shows one entry
    one = Context().with_value(INVOCATION_PAIRS, pairs[:2])
    assert grpc_to_context(one, dict(pairs[:2]))[TOKEN] == "first"


def test_client_hooks_write_the_token() -> None:
    headers: CIMultiDict[str] = CIMultiDict()
    ctx = Context().with_value(TOKEN, "t3")
    assert context_to_http(ctx, headers) is ctx
    assert headers["authorization"] == "Bearer t3"
    metadata: dict[str, str | bytes] = {}
    context_to_grpc(ctx, metadata)
    assert metadata == {"authorization": "Bearer t3"}


def test_client_hooks_without_token_send_nothing() -> None:
    headers: CIMultiDict[str] = CIMultiDict()
    metadata: dict[str, str | bytes] = {}
    context_to_http(Context(), headers)
    context_to_grpc(Context(), metadata)
    assert not headers
    assert not metadata


def test_message_hooks_carry_the_token_in_an_authorization_header() -> None:
    headers: dict[str, str] = {}
    context_to_message(Context().with_value(TOKEN, "abc"), headers)
    assert headers == {"Authorization": "Bearer abc"}
    assert message_to_context(Context(), headers)[TOKEN] == "abc"
    assert message_to_context(Context(), {}).get(TOKEN) is None
    assert message_to_context(Context(), {"Authorization": "Basic x"}).get(TOKEN) is None
    untouched: dict[str, str] = {}
    context_to_message(Context(), untouched)
    assert untouched == {}
