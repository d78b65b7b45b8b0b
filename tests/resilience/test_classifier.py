"""The shared failure classifier: client faults, server faults, connection errors, cancellation."""

from __future__ import annotations

import asyncio

import pytest

from kitpy.errors import (
    Cancelled,
    CircuitOpen,
    Code,
    DataLoss,
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    NotFound,
    RateLimited,
    Unauthenticated,
    Unavailable,
    Unknown,
)
from kitpy.resilience import (
    Classifier,
    is_cancellation,
    is_failure,
    is_retryable_error,
)


@pytest.mark.parametrize(
    "exc",
    [InvalidArgument(), NotFound(), Unauthenticated(), RateLimited(), Cancelled()],
)
def test_client_faults_and_cancellation_are_not_failures(exc: BaseException) -> None:
    assert not is_failure(exc)
    assert not is_retryable_error(exc)


@pytest.mark.parametrize(
    "exc",
    [Internal(), Unknown(), DataLoss(), RuntimeError("boom")],
)
def test_server_faults_are_failures_but_not_retryable(exc: BaseException) -> None:
    assert is_failure(exc)
    assert not is_retryable_error(exc)


@pytest.mark.parametrize(
    "exc",
    [
        Unavailable(),
        CircuitOpen(),
        DeadlineExceeded(),
        ConnectionRefusedError(),
        ConnectionResetError(),
        TimeoutError(),
        OSError("no route to host"),
    ],
)
def test_unavailable_deadline_and_connection_errors_are_failures_and_retryable(
    exc: BaseException,
) -> None:
    assert is_failure(exc)
    assert is_retryable_error(exc)


def test_cancellation_is_neither() -> None:
    exc = asyncio.CancelledError()
    assert is_cancellation(exc)
    assert is_cancellation(Cancelled())
    assert not is_failure(exc)
    assert not is_retryable_error(exc)
    assert not is_cancellation(Unavailable())


def test_custom_classifier() -> None:
    class LibConnectionError(Exception):
        pass

    strict = Classifier(
        failure_codes=frozenset({Code.UNAVAILABLE}),
        retryable_codes=frozenset({Code.UNAVAILABLE, Code.INTERNAL}),
        connection_errors=(LibConnectionError,),
    )
    assert strict.is_retryable(LibConnectionError())
    assert strict.is_retryable(Internal())
    assert not strict.is_failure(Internal())
    assert not strict.is_retryable(ConnectionRefusedError())
    assert not is_retryable_error(LibConnectionError())
