"""Bearer-token transport hooks, called directly with the shapes the transports pass."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from kitpy import Context
from kitpy.auth import (
    TOKEN,
    bearer_token,
    context_to_grpc,
    context_to_http,
    grpc_to_context,
    http_to_context,
)


class FakeRequest:
    """Only what the hook reads: ``headers`` (aiohttp gives a CIMultiDictProxy)."""

    def __init__(self, **headers: str) -> None:
        self.headers = CIMultiDictProxy(CIMultiDict(headers))


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
