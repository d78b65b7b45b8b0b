"""Errors on the wire: the JSON error body, the default error encoder, and its reverse.

Every error a kitpy HTTP server sends has this body (``details`` only when set)::

    {"error": {"code": "INVALID_ARGUMENT", "message": "empty string", "details": {...}}}

The status (:func:`response_status`) comes from the code table in
:mod:`kitpy.errors` (INVALID_ARGUMENT -> 400, NOT_FOUND -> 404, ...), except
for the request problems HTTP has its own statuses for:
:class:`PayloadTooLarge` (413) and :class:`UnsupportedMediaType` (415), both
INVALID_ARGUMENT, :class:`MethodNotAllowed` (405) and
:class:`UnsupportedTransferCoding` (501), UNIMPLEMENTED, and
:class:`RequestTimeout` (408), DEADLINE_EXCEEDED.  A
``KitError`` keeps its message; any other exception gets the code
:func:`kitpy.errors.error_code` gives it (UNKNOWN / 500 for a plain exception,
DEADLINE_EXCEEDED / 504 for a ``TimeoutError``) and a generic message, so its
text never reaches the client.

:func:`decode_error` is the reverse, used by the client, and does not trust
the upstream: the code comes from the HTTP status first, and a kitpy error
body's code is believed only when it agrees with the status (the status is the
one that code is sent with, or the one that maps back to it), so a 500 whose
body says UNAUTHENTICATED stays a server fault.  The body's message is relayed
capped and on one line (:func:`kitpy.transport.relay.relayed_message`), its
details only when their JSON is at most 4 KiB.  Anything else -- an HTML page,
a disagreeing or unknown code -- becomes the status's code with a message
naming the status, ``upstream answered 502 Bad Gateway``.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, ClassVar

import msgspec
from aiohttp import web
from multidict import CIMultiDict

from kitpy.context import Context
from kitpy.errors import (
    Code,
    DeadlineExceeded,
    InvalidArgument,
    KitError,
    Unimplemented,
    code_from_http_status,
    from_code,
    to_kit_error,
)
from kitpy.errors import http_status as code_http_status
from kitpy.transport.relay import relayed_message

__all__ = [
    "MAX_ERROR_BODY_SIZE",
    "MethodNotAllowed",
    "PayloadTooLarge",
    "RequestTimeout",
    "UnsupportedMediaType",
    "UnsupportedTransferCoding",
    "decode_error",
    "default_error_encoder",
    "error_body",
    "response_status",
]

_JSON = "application/json"

MAX_ERROR_BODY_SIZE = 64 * 1024
"""The most of an upstream's error body a Client reads: 64 KiB.  A longer body is not
read (the connection is closed) and the error is mapped from the status alone."""

_MAX_DETAILS = 4 * 1024  # bytes of JSON; larger details are dropped, code and message kept


class PayloadTooLarge(InvalidArgument):
    """The request body is over the size limit: INVALID_ARGUMENT, sent as HTTP 413."""

    status: ClassVar[int] = 413


class UnsupportedMediaType(InvalidArgument):
    """The request's Content-Type cannot be decoded: INVALID_ARGUMENT, sent as HTTP 415."""

    status: ClassVar[int] = 415


class RequestTimeout(DeadlineExceeded):
    """The request body did not arrive in time: DEADLINE_EXCEEDED, sent as HTTP 408.

    408 maps back to DEADLINE_EXCEEDED in :mod:`kitpy.errors`, so a kitpy
    client raises the same ``DeadlineExceeded`` it would for a 504.
    """

    status: ClassVar[int] = 408


class UnsupportedTransferCoding(Unimplemented):
    """A ``Transfer-Encoding`` other than ``chunked``: UNIMPLEMENTED, sent as HTTP 501.

    RFC 9112 asks for 501 when a server does not understand a request's
    transfer coding; aiohttp would decode the chunks and ignore the rest.
    """

    status: ClassVar[int] = 501


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
    if isinstance(
        err,
        PayloadTooLarge
        | UnsupportedMediaType
        | MethodNotAllowed
        | RequestTimeout
        | UnsupportedTransferCoding,
    ):
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
    details: msgspec.Raw = msgspec.Raw()  # decoded only when small


class _WireBody(msgspec.Struct):
    error: _WireError


_decode_body = msgspec.json.Decoder(_WireBody).decode
_decode_details = msgspec.json.Decoder(dict[str, Any]).decode


def _agrees(code: Code, status: int) -> bool:
    """Whether an error body's ``code`` may be believed for a response with ``status``.

    It may when ``status`` is the one the code is sent with (``http_status``) or
    the one that maps back to it (``code_from_http_status``: 413 and 415 for
    INVALID_ARGUMENT, 405 for UNIMPLEMENTED, 502 for UNAVAILABLE, ...).  Every
    error a kitpy server sends passes; a 500 saying UNAUTHENTICATED does not.
    """
    return code is not Code.OK and (
        code_http_status(code) == status or code_from_http_status(status) is code
    )


def _status_error(status: int, reason: str | None) -> KitError:
    """The error for ``status`` alone, with a message naming it (never the upstream's body)."""
    code = code_from_http_status(status)
    if code is Code.OK:  # a status no table calls an error, e.g. 1xx or 3xx
        code = Code.UNKNOWN
    try:
        phrase = HTTPStatus(status).phrase  # the standard phrase, not the upstream's
    except ValueError:
        phrase = relayed_message(reason or "", limit=64)
    return from_code(code, f"upstream answered {status} {phrase}".rstrip())


def _details(raw: msgspec.Raw) -> dict[str, Any] | None:
    if not raw or len(raw) > _MAX_DETAILS:
        return None
    try:
        return _decode_details(raw)
    except (msgspec.MsgspecError, RecursionError):
        return None


def decode_error(status: int, body: bytes, reason: str | None = None) -> KitError:
    """The ``KitError`` a client raises for a non-2xx response.

    A kitpy error body whose code agrees with ``status`` gives that code's
    subclass, its message (relayed: one line, at most 512 characters) and its
    details (when their JSON is at most 4 KiB); any other response gives the
    status's code and ``upstream answered <status> <phrase>``.  ``reason`` (the
    upstream's reason phrase) is used only for a status without a standard phrase.

    Example::

        err = decode_error(404, b'{"error": {"code": "NOT_FOUND", "message": "no user 7"}}')
        assert isinstance(err, NotFound) and err.message == "no user 7"
        err = decode_error(500, b'{"error": {"code": "UNAUTHENTICATED", "message": "?"}}')
        assert isinstance(err, Internal)  # the status wins: a server fault, never a 401
    """
    try:
        wire = _decode_body(body).error
    except (msgspec.MsgspecError, RecursionError):
        return _status_error(status, reason)
    code = Code.__members__.get(wire.code)
    if code is None or not _agrees(code, status):
        return _status_error(status, reason)
    return from_code(code, relayed_message(wire.message), _details(wire.details))
