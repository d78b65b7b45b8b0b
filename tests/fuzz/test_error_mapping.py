"""Fuzz the error vocabulary and the Context: codes, statuses, wire bodies, any exception.

* every Code survives the HTTP status table (to the same status) and the gRPC
  table (exactly), and :func:`from_code` builds the subclass for it;
* any status and any bytes decode to a non-OK ``KitError`` (the client side);
* any exception -- builtin, KitError with any code/message/details, or one
  that breaks ``str()`` -- encodes to an error response that is never a 2xx,
  whose body is valid JSON, and that never shows an unexpected exception's text;
* a Context never extends its parent's deadline and never reports negative time.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import grpc
from hypothesis import given
from hypothesis import strategies as st

from kitpy import Context
from kitpy.errors import (
    Code,
    KitError,
    code_from_http_status,
    error_class,
    error_code,
    from_code,
    http_status,
    is_client_fault,
    is_retryable,
    is_server_fault,
    to_kit_error,
)
from kitpy.resilience import RetryError
from kitpy.transport.grpc import code_from_grpc_status, grpc_status
from kitpy.transport.http import decode_error, default_error_encoder

from .harness import fuzz_settings

codes = st.sampled_from(list(Code))
error_codes = st.sampled_from([c for c in Code if c is not Code.OK])
json_safe = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
any_details = st.none() | st.dictionaries(
    st.text(max_size=5), json_safe | st.builds(object) | st.just(math.nan), max_size=3
)


class BadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str() of this exception fails")


builtin_errors = st.sampled_from(
    [
        ValueError,
        TypeError,
        KeyError,
        RuntimeError,
        OSError,
        ConnectionResetError,
        ConnectionRefusedError,
        TimeoutError,
        asyncio.TimeoutError,
        asyncio.CancelledError,
        RecursionError,
        UnicodeError,
        MemoryError,
        BadStr,
    ]
)
kit_errors = st.builds(
    lambda code, message, details: from_code(code, message, details),
    error_codes,
    st.text(max_size=40),
    any_details,
)
exceptions = st.one_of(
    st.builds(lambda cls, text: cls(text), builtin_errors, st.text(max_size=20)),
    kit_errors,
    st.lists(kit_errors | st.builds(ConnectionError), min_size=1, max_size=3).map(RetryError),
)


@fuzz_settings(100)
@given(code=codes, message=st.text(max_size=30))
def test_codes_round_trip_through_both_status_tables(code: Code, message: str) -> None:
    assert code_from_grpc_status(grpc_status(code)) is code
    assert http_status(code_from_http_status(http_status(code))) == http_status(code)
    err = from_code(code, message)
    assert type(err) is error_class(code)
    assert err.code is code
    assert err.message == (message or code.name.replace("_", " ").lower())
    assert not (is_client_fault(code) and is_server_fault(code))
    assert not is_retryable(code) or is_server_fault(code)


@fuzz_settings(200)
@given(
    status=st.integers(0, 1000),
    body=st.binary(max_size=200) | json_safe.map(lambda v: json.dumps({"error": v}).encode()),
    reason=st.none() | st.text(max_size=10),
)
def test_any_error_response_decodes_to_a_non_ok_kit_error(
    status: int, body: bytes, reason: str | None
) -> None:
    err = decode_error(status, body, reason)
    assert isinstance(err, KitError)
    assert err.code is not Code.OK
    assert type(err) is error_class(err.code)


@fuzz_settings(200)
@given(exc=exceptions)
def test_any_exception_encodes_to_a_proper_error_response(exc: BaseException) -> None:
    code = error_code(exc)
    assert to_kit_error(exc).code is code
    response = default_error_encoder(Context(), exc)
    assert response.status >= 400
    assert response.body is not None
    assert isinstance(response.body, bytes)
    body = json.loads(response.body)
    assert body["error"]["code"] == code.name
    if not isinstance(exc, KitError):  # an unexpected exception's text never leaks
        assert body["error"]["message"] == code.name.replace("_", " ").lower()
    else:
        assert response.status == (500 if code is Code.OK else http_status(code))
    # every policy question has an answer, none raises
    assert isinstance(is_server_fault(exc), bool)
    assert isinstance(is_retryable(exc), bool)
    if isinstance(exc, RetryError):
        assert code is error_code(exc.last)


@fuzz_settings(100)
@given(code=error_codes, message=st.text(max_size=60))
def test_grpc_status_codes_map_to_the_same_subclass(code: Code, message: str) -> None:
    status = grpc_status(code)
    assert isinstance(status, grpc.StatusCode)
    err = from_code(code_from_grpc_status(status), message)
    assert type(err) is error_class(code)


@fuzz_settings(200)
@given(
    timeouts=st.lists(
        st.floats(allow_nan=False, allow_infinity=True, min_value=-1e12), min_size=1, max_size=5
    ),
    now=st.floats(0, 1e9),
)
def test_a_context_never_extends_its_deadline(timeouts: list[float], now: float) -> None:
    clock: Any = lambda: now  # noqa: E731
    ctx = Context(clock=clock)
    previous = math.inf
    for seconds in timeouts:
        ctx = ctx.with_timeout(seconds)
        deadline = ctx.deadline
        assert deadline is not None
        assert deadline <= previous
        previous = deadline
        remaining = ctx.time_remaining()
        assert remaining is not None
        assert remaining >= 0
        assert ctx.expired == (deadline <= now)
