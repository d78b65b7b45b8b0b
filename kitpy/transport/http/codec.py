"""JSON codecs for the HTTP transport, built on msgspec.

Server side: :func:`decode_json` builds a request decoder for a dataclass (or
any type msgspec understands) and :func:`encode_json` writes a response.
Client side: :func:`encode_json_request` and :func:`decode_json_response`,
which reads the body with :func:`read_body`: at most the Client's
``max_response_size`` (:data:`DEFAULT_MAX_RESPONSE_SIZE`, 4 MiB, unless the
Client sets another), whatever the upstream sends.

Why msgspec: it decodes straight into a frozen dataclass *with type
validation* in C, faster than orjson plus a hand-written validator or stdlib
``json`` (the figures are in docs/decisions.md), validates nested dataclasses,
lists, optionals, unions, literals and enums, and reports *where* a value is
wrong (``Expected `int`, got `str` - at `$.items[0].qty```), which is what a
400 message should say.  orjson parses as fast but validates nothing.

Strictness: msgspec ignores unknown fields of a dataclass (and of a Struct not
declared ``forbid_unknown_fields=True``), so for the strict default
``decode_json`` also builds, once, a mirror ``msgspec.Struct`` of the type tree
with ``forbid_unknown_fields=True`` and checks the body against it before
decoding into the real type.  A tree of Structs that all forbid
unknown fields needs no mirror.  ``ignore_unknown_fields=True``
skips that check.

Every decode problem is an ``InvalidArgument`` naming it: wrong Content-Type
(415), body over ``max_body_size`` (413), empty body, malformed JSON, wrong
shape or type, missing or unknown field (400).
"""

from __future__ import annotations

import asyncio
import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any, Generic, Literal, TypeAlias, TypeVar

import msgspec
import msgspec.structs
from aiohttp import ClientResponse, hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict, CIMultiDictProxy

from kitpy.context import Context, Key
from kitpy.errors import Internal, InvalidArgument
from kitpy.transport.http.errors import (
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
    UnsupportedTransferCoding,
)
from kitpy.transport.http.types import NOT_YET, DecodeResponse, NotYet, OutgoingRequest
from kitpy.transport.relay import response_too_large

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_MAX_RESPONSE_SIZE",
    "MAX_RESPONSE_SIZE",
    "JsonRequestDecoder",
    "decode_json",
    "decode_json_response",
    "encode_json",
    "encode_json_request",
    "READ_ERRORS",
    "body_read_error",
    "json_decoder",
    "read_body",
]

T = TypeVar("T")

DEFAULT_MAX_BODY_SIZE = 1024 * 1024
"""The default request body limit of :func:`decode_json`: 1 MiB (as aiohttp's)."""

DEFAULT_BODY_TIMEOUT = 30.0
"""Seconds :func:`decode_json` waits for a body still arriving: 1 MiB at ~35 KB/s at least."""

DEFAULT_MAX_RESPONSE_SIZE = 4 * 1024 * 1024
"""The default response body limit of a :class:`~kitpy.transport.http.Client`: 4 MiB
(grpc's default receive limit, so both transports' Clients read at most as much)."""

MAX_RESPONSE_SIZE: Key[int] = Key("max_response_size")
"""The response body limit :func:`read_body` applies: a Client puts its ``max_response_size``
here in the Context it hands its decoder (when it differs from what :func:`read_body` would
find there already)."""

_JSON = "application/json"
_JSON_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict({hdrs.CONTENT_TYPE: _JSON}))
_encode = msgspec.json.Encoder().encode


# -- typed decoding ---------------------------------------------------------------


def _strict_mirror(tp: Any, building: dict[type, Any]) -> Any:
    """``tp`` with each dataclass and Struct in it replaced by a Struct that forbids unknown fields.

    A recursive Struct is checked down to where it repeats; below that its own
    config applies (msgspec decodes recursive Structs, not recursive dataclasses).
    """
    if isinstance(tp, type) and (dataclasses.is_dataclass(tp) or issubclass(tp, msgspec.Struct)):
        if tp in building:
            if building[tp] is None and issubclass(tp, msgspec.Struct):
                return tp
            if building[tp] is None:
                raise TypeError(
                    f"{tp.__name__} refers to itself; strict decoding does not support "
                    "recursive types (pass ignore_unknown_fields=True)"
                )
            return building[tp]
        building[tp] = None
        mirror = (
            _dataclass_mirror(tp, building)
            if dataclasses.is_dataclass(tp)
            else _struct_mirror(tp, building)
        )
        building[tp] = mirror
        return mirror
    origin = typing.get_origin(tp)
    if origin is None or origin is typing.Literal:
        return tp
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return typing.Annotated[(_strict_mirror(args[0], building), *tp.__metadata__)]
    new_args = tuple(_strict_mirror(a, building) for a in args)
    if new_args == args:
        return tp
    if origin is typing.Union or origin is types.UnionType:
        return typing.Union[new_args]  # noqa: UP007 -- built from a runtime tuple
    return origin[new_args]


_MirrorField: TypeAlias = tuple[str, Any] | tuple[str, Any, Any]


def _mirror_field(name: str, ftype: Any, default: Any, factory: Any, none: object) -> _MirrorField:
    """A ``defstruct`` field spec; ``none`` marks "no default" / "no factory"."""
    if default is not none:
        return (name, ftype, default)
    if factory is not none:
        return (name, ftype, msgspec.field(default_factory=factory))
    return (name, ftype)


def _dataclass_mirror(tp: Any, building: dict[type, Any]) -> Any:
    hints = typing.get_type_hints(tp, include_extras=True)
    fields = [
        _mirror_field(
            f.name,
            _strict_mirror(hints[f.name], building),
            f.default,
            f.default_factory,
            dataclasses.MISSING,
        )
        for f in dataclasses.fields(tp)
        if f.init
    ]
    return msgspec.defstruct(tp.__name__, fields, kw_only=True, forbid_unknown_fields=True)


def _struct_mirror(tp: Any, building: dict[type, Any]) -> Any:
    """The Struct itself if it forbids unknown fields all the way down, else a copy that does.

    The copy keeps what decoding depends on: wire names, tag and array layout.
    """
    config = tp.__struct_config__
    infos = msgspec.structs.fields(tp)
    pairs = [(f, _strict_mirror(f.type, building)) for f in infos]
    if config.forbid_unknown_fields and all(ftype is f.type for f, ftype in pairs):
        return tp
    fields = [
        _mirror_field(f.name, ftype, f.default, f.default_factory, msgspec.NODEFAULT)
        for f, ftype in pairs
    ]
    return msgspec.defstruct(
        tp.__name__,
        fields,
        kw_only=True,
        forbid_unknown_fields=True,
        rename={f.name: f.encode_name for f in infos},
        tag=config.tag,
        tag_field=config.tag_field,
        array_like=config.array_like,
    )


def json_decoder(tp: type[T], *, ignore_unknown_fields: bool = False) -> Callable[[bytes], T]:
    """A function that decodes JSON bytes into ``tp`` with validation.

    It raises ``msgspec.DecodeError`` (not JSON), ``msgspec.ValidationError``
    (wrong shape, type, missing or -- unless ``ignore_unknown_fields`` -- unknown
    field of a dataclass) or ``RecursionError`` (absurdly deep nesting).

    Example::

        decode = json_decoder(UppercaseRequest)
        decode(b'{"s": "hi"}')          # UppercaseRequest(s='hi')
    """
    decode, check = _decoders(tp, ignore_unknown_fields=ignore_unknown_fields)
    if check is None:
        return decode

    def strict(body: bytes) -> T:
        check(body)
        return decode(body)

    return strict


def _decoders(
    tp: type[T], *, ignore_unknown_fields: bool
) -> tuple[Callable[[bytes], T], Callable[[bytes], object] | None]:
    """(decode into ``tp``, the unknown-field check to run first, or None)."""
    decode: Callable[[bytes], T] = msgspec.json.Decoder(tp).decode
    if ignore_unknown_fields:
        return decode, None
    mirror = _strict_mirror(tp, {})
    if mirror is tp:
        return decode, None
    check: Callable[[bytes], object] = msgspec.json.Decoder(mirror).decode
    return decode, check


def _decode_error(exc: Exception) -> InvalidArgument:
    if isinstance(exc, msgspec.ValidationError):
        return InvalidArgument(f"invalid request body: {exc}")
    if isinstance(exc, RecursionError):
        return InvalidArgument("malformed JSON body: nested too deeply")
    return InvalidArgument(f"malformed JSON body: {str(exc).removeprefix('JSON is malformed: ')}")


# -- server side ----------------------------------------------------------------------


def _is_json_content_type(value: str) -> bool:
    mime, _, params = value.partition(";")
    mime = mime.strip().lower()
    if mime != _JSON and not (mime.startswith("application/") and mime.endswith("+json")):
        return False
    for param in params.split(";"):
        name, _, charset = param.partition("=")
        if name.strip().lower() == "charset" and charset.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            return False
    return True


async def _read_unsized_body(request: web.Request, limit: int) -> bytes:
    """Read a body sent without Content-Length (chunked), stopping once over ``limit``."""
    chunks: list[bytes] = []
    size = 0
    stream = request.content
    while chunk := await stream.readany():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _check_transfer_coding(coding: str | None) -> None:
    """Refuse a transfer coding other than plain ``chunked`` (aiohttp would ignore the rest)."""
    if coding is not None and coding.strip().lower() != "chunked":
        raise UnsupportedTransferCoding(
            f"Transfer-Encoding {coding[:60]!r} is not supported; send chunked or Content-Length"
        )


def _arrived_body(request: web.Request) -> bytes | None:
    """The whole body if it has already arrived (taken out of the stream), else None.

    A small body usually arrives with the headers, so by the time the handler
    runs it sits complete in the request's stream: taking it with the stream's
    public ``read_nowait`` awaits nothing.  The application's
    ``client_max_size`` is enforced as ``request.read()`` does it.
    """
    stream = request.content
    if not stream.is_eof():
        return None
    body = stream.read_nowait()  # raises the parser's error, as readany() would
    limit = request.client_max_size
    if limit and len(body) > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    return body


class JsonRequestDecoder(Generic[T]):
    """The request decoder :func:`decode_json` returns: an async ``(ctx, request) -> T``.

    It checks the Content-Type and declared length, reads the body (taking it
    at once, with nothing awaited, when it has already arrived, which is the
    common case for a small body: :meth:`decode_now`, which the Server calls
    first), and decodes it with :meth:`parse`.  The body
    is consumed from the request's stream: read it yourself in a decoder of
    your own if you need the bytes too.

    Example::

        decode = decode_json(UppercaseRequest)
        request = await decode(ctx, aiohttp_request)  # in any handler
        decode.parse(b'{"s": "hi"}')                  # UppercaseRequest(s='hi')
    """

    __slots__ = (
        "_decode",
        "_strict_check",
        "body_timeout",
        "max_body_size",
        "require_content_type",
    )

    def __init__(
        self,
        decode: Callable[[bytes], T],
        *,
        max_body_size: int,
        require_content_type: bool,
        strict_check: Callable[[bytes], object] | None = None,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
    ) -> None:
        self._decode = decode
        self._strict_check = strict_check  # run first; raises on unknown fields
        self.max_body_size = max_body_size
        self.require_content_type = require_content_type
        self.body_timeout = body_timeout

    def decode_now(self, ctx: Context, request: web.Request) -> T | Literal[NotYet.NOT_YET]:
        """The decoded body if it has already arrived, else ``NOT_YET`` (nothing awaited).

        The Server calls this first (see :data:`~kitpy.transport.http.types.DecodeRequest`):
        a small body usually comes with the headers.  The checks and errors are the
        decoder's own; for ``NOT_YET``, awaiting the decoder reads the rest.
        """
        headers = request.headers
        if self.require_content_type:
            content_type = headers.get(hdrs.CONTENT_TYPE)
            if content_type != _JSON and (
                content_type is None or not _is_json_content_type(content_type)
            ):
                raise UnsupportedMediaType(
                    f"Content-Type must be {_JSON}, got {content_type or 'none'}"[:200]
                )
        length = headers.get(hdrs.CONTENT_LENGTH)
        if length is not None and int(length) > self.max_body_size:  # aiohttp checked the digits
            raise PayloadTooLarge(
                f"request body is {length} bytes; the limit is {self.max_body_size}"
            )
        if length is None:
            _check_transfer_coding(headers.get(hdrs.TRANSFER_ENCODING))
        try:
            body = _arrived_body(request)
        except READ_ERRORS as exc:
            raise body_read_error(request, exc) from None
        if body is None:
            return NOT_YET
        if length is None and len(body) > self.max_body_size:
            raise PayloadTooLarge(
                f"request body is larger than the limit of {self.max_body_size} bytes"
            )
        return self.parse(body)

    async def __call__(self, ctx: Context, request: web.Request) -> T:
        """Read and decode the request body; every problem is an ``InvalidArgument``."""
        decoded = self.decode_now(ctx, request)
        if decoded is not NOT_YET:
            return decoded
        unsized = request.headers.get(hdrs.CONTENT_LENGTH) is None
        try:
            body = await self._read_slowly(request, unsized)
        except READ_ERRORS as exc:
            raise body_read_error(request, exc) from None
        return self.parse(body)

    async def _read_slowly(self, request: web.Request, unsized: bool) -> bytes:
        """Await a body still arriving, for at most ``body_timeout`` seconds."""
        timeout = asyncio.timeout(self.body_timeout)
        try:
            async with timeout:
                if unsized:  # chunked: stop reading once over the limit
                    return await _read_unsized_body(request, self.max_body_size)
                return await request.read()
        except TimeoutError:
            if timeout.expired():  # ours, not the request's deadline
                raise RequestTimeout(
                    f"the request body did not arrive within {self.body_timeout:g} s"
                ) from None
            raise

    def parse(self, body: bytes) -> T:
        """Decode the body; ``InvalidArgument`` (400) naming the problem if it does not fit."""
        if not body:
            raise InvalidArgument("request body is empty; expected JSON")
        try:
            if self._strict_check is not None:
                self._strict_check(body)
            return self._decode(body)
        except (msgspec.MsgspecError, RecursionError) as exc:
            raise _decode_error(exc) from None


READ_ERRORS = (web.HTTPRequestEntityTooLarge, HttpProcessingError, web.RequestPayloadError)
"""What aiohttp raises while reading a request body; :func:`body_read_error` translates them."""


def body_read_error(request: web.Request, exc: BaseException) -> BaseException:
    """The kitpy error for ``exc`` if aiohttp raised it reading the body, else ``exc`` itself.

    The application's ``client_max_size`` exceeded is a 413 ``PayloadTooLarge``;
    bad chunking or a body that does not decompress (``Content-Encoding``) is a
    400 ``InvalidArgument`` quoting the parser's message.  The Server passes
    every error through this, so a decoder of your own may simply ``await
    request.read()``.

    Example::

        try:
            body = await request.read()
        except READ_ERRORS as exc:
            raise body_read_error(request, exc) from None
    """
    if not isinstance(exc, READ_ERRORS):
        return exc
    if isinstance(exc, web.HTTPRequestEntityTooLarge):  # the application's client_max_size
        return PayloadTooLarge(
            f"request body is larger than the limit of {request.client_max_size} bytes"
        )
    cause = exc.__cause__ if isinstance(exc, web.RequestPayloadError) else exc
    if isinstance(cause, HttpProcessingError):
        message = cause.message
    else:
        message = " ".join(str(exc).split())
    return InvalidArgument(f"could not read request body: {message}"[:300])


def decode_json(
    tp: type[T],
    *,
    ignore_unknown_fields: bool = False,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    require_content_type: bool = True,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
) -> JsonRequestDecoder[T]:
    """Build a request decoder that reads a JSON body into ``tp`` (usually a frozen dataclass).

    Unknown fields are rejected unless ``ignore_unknown_fields``; the body must
    be at most ``max_body_size`` bytes; the Content-Type must be
    ``application/json`` (or ``application/*+json``, UTF-8) unless
    ``require_content_type=False``.  A body still arriving must arrive within
    ``body_timeout`` seconds (a client stalling its body is answered 408); a
    ``Transfer-Encoding`` other than ``chunked`` is refused (501).  Every other
    failure is an ``InvalidArgument`` (400, or 413/415) whose message names the
    problem.

    Example::

        server = Server(endpoint, decode_json(UppercaseRequest), encode_json)
    """
    decode, check = _decoders(tp, ignore_unknown_fields=ignore_unknown_fields)
    return JsonRequestDecoder(
        decode,
        max_body_size=max_body_size,
        require_content_type=require_content_type,
        strict_check=check,
        body_timeout=body_timeout,
    )


def encode_json(ctx: Context, response: Any) -> web.Response:
    """Encode ``response`` (dataclass, Struct, mapping, list, ...) as a 200 JSON response."""
    # prebuilt headers: aiohttp copies them, a little cheaper than passing content_type
    return web.Response(body=_encode(response), headers=_JSON_HEADERS)


# -- client side ----------------------------------------------------------------------


def encode_json_request(ctx: Context, out: OutgoingRequest, request: Any) -> None:
    """Encode ``request`` as the JSON body of the outgoing request."""
    out.body = _encode(request)
    out.headers["Content-Type"] = _JSON


async def read_body(ctx: Context, response: ClientResponse, *, limit: int | None = None) -> bytes:
    """Read a response body of at most ``limit`` bytes; over it, ``Unavailable`` naming the limit.

    ``limit`` defaults to the calling Client's ``max_response_size`` (from the
    Context, :data:`MAX_RESPONSE_SIZE`), else :data:`DEFAULT_MAX_RESPONSE_SIZE`.
    A declared ``Content-Length`` over it fails before anything is read; a body
    without one (chunked) or compressed is read chunk by chunk and fails as soon
    as it passes the limit (decompressed size counts).  On failure the
    connection is closed, not drained.  Call it in a response decoder of your
    own instead of ``await response.read()``:

    Example::

        async def decode_csv(ctx: Context, response: ClientResponse) -> list[str]:
            return (await read_body(ctx, response)).decode().splitlines()
    """
    if limit is None:
        limit = ctx.get(MAX_RESPONSE_SIZE, DEFAULT_MAX_RESPONSE_SIZE)
    length = response.content_length
    if length is not None:
        if length > limit:
            response.close()
            raise response_too_large(limit, option="max_response_size")
        if hdrs.CONTENT_ENCODING not in response.headers:
            return await response.read()  # the parser stops at Content-Length
    chunks: list[bytes] = []
    size = 0
    stream = response.content
    while chunk := await stream.readany():
        size += len(chunk)
        if size > limit:
            response.close()
            raise response_too_large(limit, option="max_response_size")
        chunks.append(chunk)
    return b"".join(chunks)


_UNDECODABLE = "the upstream's response could not be decoded"


def decode_json_response(tp: type[T], *, ignore_unknown_fields: bool = True) -> DecodeResponse[T]:
    """Build a response decoder that reads a 2xx JSON body into ``tp``.

    Unknown fields are ignored by default, so a server may add fields without
    breaking older clients.  The body is read with :func:`read_body` (at most
    the Client's ``max_response_size``).  A body that does not fit raises
    ``Internal`` with a fixed message, "the upstream's response could not be
    decoded": what the decoder said (which may quote the upstream) is only in
    its ``__cause__``, for the logs, never in what a caller sees.
    """
    decode = json_decoder(tp, ignore_unknown_fields=ignore_unknown_fields)

    async def decode_response(ctx: Context, response: ClientResponse) -> T:
        body = await read_body(ctx, response)
        try:
            return decode(body)
        except (msgspec.MsgspecError, RecursionError) as exc:
            raise Internal(_UNDECODABLE) from exc

    return decode_response
