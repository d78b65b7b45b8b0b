"""Errors: codes, subclasses, HTTP mapping, classification and policy."""

from __future__ import annotations

import asyncio

import pytest

from kitpy import errors
from kitpy.errors import (
    CircuitOpen,
    Code,
    InvalidArgument,
    KitError,
    NotFound,
    RateLimited,
    Unavailable,
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

EXPECTED_HTTP = {
    Code.OK: 200,
    Code.CANCELLED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}

# Where several codes share a status, the status maps back to this one.
CANONICAL_FOR_STATUS = {400: Code.INVALID_ARGUMENT, 409: Code.ALREADY_EXISTS, 500: Code.INTERNAL}


def test_there_are_seventeen_codes_numbered_like_grpc() -> None:
    assert len(Code) == 17
    numbers = {code.name: int(code) for code in Code}
    assert numbers["OK"] == 0
    assert numbers["UNAVAILABLE"] == 14
    assert numbers["UNAUTHENTICATED"] == 16


@pytest.mark.parametrize("code", list(Code))
def test_http_status_table(code: Code) -> None:
    assert http_status(code) == EXPECTED_HTTP[code]


@pytest.mark.parametrize("code", list(Code))
def test_http_round_trip(code: Code) -> None:
    status = http_status(code)
    expected = CANONICAL_FOR_STATUS.get(status, code)
    assert code_from_http_status(status) == expected


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (201, Code.OK),
        (204, Code.OK),
        (405, Code.UNIMPLEMENTED),
        (408, Code.DEADLINE_EXCEEDED),
        (413, Code.INVALID_ARGUMENT),
        (415, Code.INVALID_ARGUMENT),
        (422, Code.INVALID_ARGUMENT),
        (502, Code.UNAVAILABLE),
        (505, Code.UNKNOWN),
        (302, Code.UNKNOWN),
    ],
)
def test_http_statuses_outside_the_table(status: int, code: Code) -> None:
    assert code_from_http_status(status) == code


@pytest.mark.parametrize("code", [c for c in Code if c is not Code.OK])
def test_from_code_builds_the_matching_subclass(code: Code) -> None:
    err = from_code(code, "boom", {"field": "s"})
    assert type(err) is error_class(code)
    assert err.code is code
    assert err.message == "boom"
    assert err.details == {"field": "s"}
    assert str(err) == "boom"


def test_subclasses_have_their_codes_and_default_messages() -> None:
    assert InvalidArgument("x").code is Code.INVALID_ARGUMENT
    assert RateLimited().code is Code.RESOURCE_EXHAUSTED
    assert RateLimited().message == "resource exhausted"
    circuit = CircuitOpen("breaker open")
    assert isinstance(circuit, Unavailable)
    assert circuit.code is Code.UNAVAILABLE
    assert repr(NotFound("no user")) == "NotFound(NOT_FOUND, 'no user')"


def test_errors_carry_transport_headers() -> None:
    err = from_code(Code.UNAUTHENTICATED, "no token", headers={"WWW-Authenticate": "Basic"})
    assert err.headers == {"WWW-Authenticate": "Basic"}
    assert NotFound("x", headers={"X-A": "1"}).headers == {"X-A": "1"}
    assert NotFound("x").headers is None


def test_kit_error_with_explicit_code() -> None:
    err = KitError(Code.ABORTED, "conflict")
    assert err.code is Code.ABORTED
    assert KitError().code is Code.UNKNOWN


def test_error_code_classifies_any_exception() -> None:
    assert error_code(NotFound("x")) is Code.NOT_FOUND
    assert error_code(TimeoutError()) is Code.DEADLINE_EXCEEDED
    assert error_code(asyncio.CancelledError()) is Code.CANCELLED
    assert error_code(ConnectionResetError()) is Code.UNAVAILABLE
    assert error_code(ValueError("secret")) is Code.UNKNOWN
    assert error_code(KeyboardInterrupt()) is Code.UNKNOWN


def test_to_kit_error_hides_the_original_text() -> None:
    original = ValueError("password=hunter2")
    err = to_kit_error(original)
    assert err.code is Code.UNKNOWN
    assert "hunter2" not in err.message
    assert err.__cause__ is original
    same = InvalidArgument("bad")
    assert to_kit_error(same) is same


def test_policy_predicates() -> None:
    client = {c for c in Code if is_client_fault(c)}
    server = {c for c in Code if is_server_fault(c)}
    retry = {c for c in Code if is_retryable(c)}
    assert not client & server
    assert Code.OK not in client | server
    assert Code.CANCELLED not in client | server
    assert {
        Code.INVALID_ARGUMENT,
        Code.NOT_FOUND,
        Code.UNAUTHENTICATED,
        Code.PERMISSION_DENIED,
        Code.RESOURCE_EXHAUSTED,
    } <= client
    assert {Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.INTERNAL, Code.UNKNOWN} <= server
    assert retry == {Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED}
    assert client | server | {Code.OK, Code.CANCELLED} == set(Code)


def test_every_public_error_name_is_exported() -> None:
    for name in errors.__all__:
        assert hasattr(errors, name)
