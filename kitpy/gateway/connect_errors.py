"""Connect's error model and metadata on the wire, for the Connect gateway.

A Connect unary error is a non-200 response with a JSON body (Content-Type
``application/json``)::

    {"code": "invalid_argument", "message": "empty string",
     "details": [{"type": "google.rpc.BadRequest", "value": "<base64, unpadded>"}]}

``code`` is the gRPC code's name in lower case (``canceled`` with one L) and
the HTTP status follows Connect's table (connectrpc.com/docs/protocol, "Error
Codes"; :func:`connect_status`)::

    canceled 499  unknown 500  invalid_argument 400  deadline_exceeded 504
    not_found 404  already_exists 409  permission_denied 403
    resource_exhausted 429  failed_precondition 400  aborted 409
    out_of_range 400  unimplemented 501  internal 500  unavailable 503
    data_loss 500  unauthenticated 401

(kitpy's own table, :func:`kitpy.errors.http_status`, agrees code for code.)
A few refusals happen before the Connect protocol starts and keep the HTTP
status the reference servers send for them, with the Connect body beside:
no such method 404 (``unimplemented``), not a POST 405, a Content-Type other
than ``application/json`` or ``application/proto`` 415, and kitpy's own 408
and 413 (see :mod:`kitpy.transport.http.errors`).

Metadata: an upstream's response headers (gRPC initial metadata) become
response headers and its trailers become headers prefixed ``trailer-``, as
Connect sends them on unary calls; ``-bin`` values are base64 (unpadded).
gRPC's own keys (``grpc-*``) and HTTP's framing headers are not passed on.
The rich error details an upstream sends in ``grpc-status-details-bin`` (a
``google.rpc.Status``) become the body's ``details``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

import grpc.aio
import msgspec
from aiohttp import web
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from multidict import CIMultiDict

from kitpy.context import Context
from kitpy.errors import Code, Unimplemented, is_client_fault, to_kit_error
from kitpy.transport.http.errors import (
    MethodNotAllowed,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
    UnsupportedTransferCoding,
)

__all__ = [
    "UnknownMethod",
    "connect_code",
    "connect_error_encoder",
    "connect_status",
    "metadata_headers",
]

_STATUS: dict[Code, int] = {
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
_NAME: dict[Code, str] = {code: code.name.lower() for code in _STATUS}
_NAME[Code.CANCELLED] = "canceled"  # Connect spells it the American way


class UnknownMethod(Unimplemented):
    """No such method: UNIMPLEMENTED, sent as HTTP 404.

    The reference servers (connect-go, connect-python) answer an unknown path
    with a bare 404, which Connect clients read as ``unimplemented``; the
    gateway sends the same status, with a body saying which method.
    """

    status = 404


_OWN_STATUS = (
    UnknownMethod,
    MethodNotAllowed,
    UnsupportedMediaType,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedTransferCoding,
)


def connect_code(code: Code) -> str:
    """Connect's name for ``code``: ``"invalid_argument"``, ``"canceled"``, ...

    OK is not an error code; it is named ``"unknown"`` (an error that says OK is a bug).

    Example::

        connect_code(Code.CANCELLED)   # "canceled"
    """
    return _NAME.get(code, "unknown")


def connect_status(code: Code) -> int:
    """The HTTP status Connect sends an error with (its table; OK -> 500).

    Example::

        connect_status(Code.UNAVAILABLE)   # 503
    """
    return _STATUS.get(code, 500)


# HTTP's own framing headers, and what the gateway sets itself: never copied from metadata
_NOT_PASSED = frozenset(
    {
        "connection",
        "content-encoding",
        "content-length",
        "content-type",
        "date",
        "host",
        "keep-alive",
        "proxy-connection",
        "server",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "vary",
    }
)


def _header_value(value: str | bytes) -> str | None:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii").rstrip("=")
    # gRPC allows only printable ASCII; anything else (a line break) must not reach a header
    return value if value.isascii() and value.isprintable() else None


def metadata_headers(
    initial: Iterable[tuple[str, str | bytes]], trailing: Iterable[tuple[str, str | bytes]]
) -> list[tuple[str, str]]:
    """Response headers for gRPC metadata, as Connect sends them on a unary call.

    Initial metadata as headers, trailing metadata prefixed ``trailer-``;
    ``-bin`` values base64-encoded without padding; ``grpc-*`` keys and
    HTTP's framing headers left out, and so is a value that is not printable ASCII.

    Example::

        metadata_headers([("x-a", "1")], [("x-b-bin", b"\\x00")])
        # [("x-a", "1"), ("trailer-x-b-bin", "AA")]
    """
    headers: list[tuple[str, str]] = []
    for prefix, pairs in (("", initial), ("trailer-", trailing)):
        for key, value in pairs:
            if key.startswith(("grpc-", ":")) or key in _NOT_PASSED:
                continue
            text = _header_value(value)
            if text is not None:
                headers.append((prefix + key, text))
    return headers


def _status_class() -> Any:
    """``google.rpc.Status``, built from its three fields (googleapis' package is not a
    dependency) in a pool of its own."""
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(any_pb2.DESCRIPTOR.serialized_pb)
    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="google/rpc/status.proto",
        package="google.rpc",
        dependency=["google/protobuf/any.proto"],
        syntax="proto3",
    )
    status = file.message_type.add(name="Status")
    status.field.add(name="code", number=1, type=field.TYPE_INT32, label=field.LABEL_OPTIONAL)
    status.field.add(name="message", number=2, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    status.field.add(
        name="details",
        number=3,
        type=field.TYPE_MESSAGE,
        label=field.LABEL_REPEATED,
        type_name=".google.protobuf.Any",
    )
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("google.rpc.Status"))


_Status = _status_class()
_MAX_DETAILS = 16 * 1024  # bytes of grpc-status-details-bin passed on; more is dropped


def _details(trailing: Iterable[tuple[str, str | bytes]]) -> list[dict[str, str]]:
    """Connect's ``details`` for the ``google.rpc.Status`` in ``grpc-status-details-bin``."""
    for key, value in trailing:
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            if len(value) > _MAX_DETAILS:
                return []
            try:
                status = _Status.FromString(value)
            except DecodeError:
                return []
            return [
                {
                    "type": detail.type_url.rpartition("/")[2],
                    "value": base64.b64encode(detail.value).decode("ascii").rstrip("="),
                }
                for detail in status.details
            ]
    return []


_encode = msgspec.json.Encoder().encode


def connect_error_encoder(ctx: Context, exc: BaseException) -> web.Response:
    """The Connect handler's error encoder: Connect's JSON error body and HTTP status.

    A ``KitError`` is sent with its code and message and its ``headers``; any
    other exception is ``unknown`` with a generic message.  When the error
    came from the upstream (its cause is the ``grpc.aio.AioRpcError``), the
    upstream's metadata is sent as headers (see :func:`metadata_headers`) and,
    for a client-fault code, its rich details as ``details``.

    Example::

        connect_error_encoder(ctx, InvalidArgument("empty string")).status   # 400
        # body: {"code":"invalid_argument","message":"empty string"}
    """
    err = to_kit_error(exc)
    message = err.message
    if not message.isascii():  # lone surrogates (undecodable path bytes) as \\udcXX escapes
        message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    body: dict[str, Any] = {"code": connect_code(err.code), "message": message}
    headers: CIMultiDict[str] = CIMultiDict(err.headers) if err.headers else CIMultiDict()
    cause = err.__cause__
    if isinstance(cause, grpc.aio.AioRpcError):
        initial, trailing = cause.initial_metadata() or (), cause.trailing_metadata() or ()
        headers.extend(metadata_headers(initial, trailing))
        if is_client_fault(err.code) and (details := _details(trailing)):
            body["details"] = details
    headers["Content-Type"] = "application/json"
    status = err.status if isinstance(err, _OWN_STATUS) else connect_status(err.code)
    return web.Response(body=_encode(body), status=status, headers=headers)
