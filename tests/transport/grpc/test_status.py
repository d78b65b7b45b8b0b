"""Code <-> grpc.StatusCode mapping."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest

from kitpy import Code
from kitpy.errors import DeadlineExceeded, KitError, NotFound, Unknown
from kitpy.transport.grpc import code_from_grpc_status, error_from_rpc_error, grpc_status


@pytest.mark.parametrize("code", list(Code), ids=lambda c: c.name)
def test_every_code_maps_to_the_same_named_status_and_back(code: Code) -> None:
    status = grpc_status(code)
    assert status.name == code.name
    assert status.value[0] == code.value
    assert code_from_grpc_status(status) is code


def test_error_from_rpc_error_keeps_subclass_message_and_string_trailers() -> None:
    err = grpc.aio.AioRpcError(
        grpc.StatusCode.NOT_FOUND,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(("retry-after", "3"), ("x-blob-bin", b"\x00")),
        details="no such user: 42",
    )
    kit = error_from_rpc_error(err)
    assert type(kit) is NotFound
    assert kit.message == "no such user: 42"
    assert kit.headers == {"retry-after": "3"}


def test_error_without_details_gets_the_default_message() -> None:
    err = grpc.aio.AioRpcError(
        grpc.StatusCode.DEADLINE_EXCEEDED, grpc.aio.Metadata(), grpc.aio.Metadata()
    )
    kit = error_from_rpc_error(err)
    assert isinstance(kit, DeadlineExceeded)
    assert kit.message == "deadline exceeded"
    assert kit.headers is None


def test_ok_status_as_an_error_is_unknown() -> None:
    err = grpc.aio.AioRpcError(grpc.StatusCode.OK, grpc.aio.Metadata(), grpc.aio.Metadata())
    kit: KitError = error_from_rpc_error(err)
    assert type(kit) is Unknown
