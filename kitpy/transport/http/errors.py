"""Errors on the wire: the JSON error body, the default error encoder, and its reverse.

Every error a kitpy HTTP server sends has this body (``details`` only when set)::

    {"error": {"code": "INVALID_ARGUMENT", "message": "empty string", "details": {...}}}

The status (:func:`response_status`) comes from the code table in
:mod:`kitpy.errors` (INVALID_ARGUMENT -> 400, NOT_FOUND -> 404, ...), except
for the three request problems HTTP has its own statuses for:
:class:`PayloadTooLarge` (413) and :class:`UnsupportedMediaType` (415), both
INVALID_ARGUMENT, and :class:`MethodNotAllowed` (405), UNIMPLEMENTED.  A
``KitError`` keeps its message; any other exception gets the code
:func:`kitpy.errors.error_code` gives it (UNKNOWN / 500 for a plain exception,
DEADLINE_EXCEEDED / 504 for a ``TimeoutError``) and a generic message, so its
text never reaches the client.

:func:`decode_error` is the reverse, used by the client: a kitpy error body
becomes the same ``KitError`` subclass with the same message and details; any
other non-2xx response becomes the code for its status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec
from aiohttp import web
from multidict import CIMultiDict

from kitpy.context import Context
from kitpy.errors import (
    Code,
    InvalidArgument,
    KitError,
    Unimplemented,
    code_from_http_status,
    from_code,
    to_kit_error,
)
from kitpy.errors import http_status as code_http_status

__all__ = [
    "MethodNotAllowed",
    "PayloadTooLarge",
    "UnsupportedMediaType",
    "decode_error",
    "default_error_encoder",
    "error_body",
    "response_status",
]

_JSON = "application/json"


class PayloadTooLarge(InvalidArgument):
    """The request body is over the size limit: INVALID_ARGUMENT, sent as HTTP 413."""

    status: ClassVar[int] = 413


class UnsupportedMediaType(InvalidArgument):
    """The request's Content-Type cannot be decoded: INVALID_ARGUMENT, sent as HTTP 415."""

    status: ClassVar[int] = 415


class MethodNotAllowed(Unimplemented):
    """The path exists, but not for the request's method: UNIMPLEMENTED, sent as HTTP 405.

    Built like the two classes above: the code in the body is the one the status
    maps back to in :mod:`kitpy.errors` (405 -> UNIMPLEMENTED, as 413 and 415 ->
    INVALID_ARGUMENT), so a kitpy client raises the same ``Unimplemented``
    whether the 405 came from a kitpy server or any other.  It is also what
    gRPC answers for a method a server does not have, and a client fault: never
    retried, never trips a breaker.  INVALID_ARGUMENT would say the request's
    content is wrong, when it is the operation that does not exist.  Give it
    the ``Allow`` header through ``headers``; :func:`~kitpy.transport.http.add_fallback`
    does.
    """

    status: ClassVar[int] = 405


def response_status(err: KitError) -> int:
    """The HTTP status the server sends for ``err`` (the code table, plus 405/413/415)."""
    if isinstance(err, PayloadTooLarge | UnsupportedMediaType | MethodNotAllowed):
        return err.status
    if err.code is Code.OK:  # an "error" that says OK is a bug, not a success
        return 500
    return code_http_status(err.code)


_encode = msgspec.json.Encoder().encode


def error_body(err: KitError) -> bytes:
    """The JSON error body for ``err``; details that cannot be encoded are left out.

    Lone surrogates in the message (undecodable request bytes quoted back, which
    aiohttp hands over surrogate-escaped) are sent as ``\\udcXX`` escapes.
    """
    message = err.message
    if not message.isascii():
        message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    error: dict[str, Any] = {"code": err.code.name, "message": message}
    if err.details:
        error["details"] = err.details
        try:
            return _encode({"error": error})
        except (TypeError, ValueError, msgspec.EncodeError):
            del error["details"]
    return _encode({"error": error})


def default_error_encoder(ctx: Context, exc: BaseException) -> web.Response:
    """The Server's default error encoder: the JSON error body, status and ``KitError.headers``.

    A ``KitError`` is sent as it is; any other exception gets the code
    :func:`kitpy.errors.error_code` gives it (UNKNOWN for a plain exception, as
    gRPC answers) and a generic message: its text may hold internals.

    Example::

        default_error_encoder(ctx, NotFound("no user 7")).status   # 404
    """
    err = to_kit_error(exc)
    headers: CIMultiDict[str] = CIMultiDict(err.headers) if err.headers else CIMultiDict()
    headers["Content-Type"] = _JSON
    return web.Response(body=error_body(err), status=response_status(err), headers=headers)


class _WireError(msgspec.Struct):
    code: str
    message: str = ""
    details: dict[str, Any] | None = None


class _WireBody(msgspec.Struct):
    error: _WireError


_decode_body = msgspec.json.Decoder(_WireBody).decode


def decode_error(status: int, body: bytes, reason: str | None = None) -> KitError:
    """The ``KitError`` a client raises for a non-2xx response.

    Example::

        err = decode_error(404, b'{"error": {"code": "NOT_FOUND", "message": "no user 7"}}')
        assert isinstance(err, NotFound) and err.message == "no user 7"
    """
    try:
        wire = _decode_body(body).error
        code = Code[wire.code]
        if code is Code.OK:
            raise KeyError(wire.code)
    except (msgspec.MsgspecError, KeyError, RecursionError):
        code = code_from_http_status(status)
        if code is Code.OK:  # a non-2xx status no table knows, e.g. 1xx or 3xx
            code = Code.UNKNOWN
        text = f"HTTP {status}" + (f" {reason}" if reason else "")
        return from_code(code, text)
    details: Mapping[str, Any] | None = wire.details
    return from_code(code, wire.message, details)
