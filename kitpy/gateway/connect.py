"""JSON (or binary protobuf) to gRPC over the Connect protocol, for unary calls.

:func:`connect_handler` is an aiohttp handler for ``POST /{service}/{method}``
that speaks Connect's unary protocol to the caller and gRPC to the upstream::

    > POST /stringsvc.v1.StringService/Uppercase HTTP/1.1
    > Content-Type: application/json
    >
    > {"s": "hello"}
    < HTTP/1.1 200 OK
    < Content-Type: application/json
    <
    < {"v":"HELLO"}

What it does with a request, in order (refusals in parentheses):

* finds the method by its path in the :class:`~kitpy.gateway.descriptors.Descriptors`
  (404 ``unimplemented``; a streaming method is 501 ``unimplemented``);
* takes only POST (405) with ``Content-Type: application/json`` or
  ``application/proto`` (415, with ``Accept-Post``); ``Connect-Protocol-Version``,
  when sent, must be ``1`` (``invalid_argument``);
* sets the deadline: ``Connect-Timeout-Ms`` (or kitpy's ``X-Timeout-Ms``),
  never later than the handler's ``timeout`` (default 30 s); a malformed value
  is ``invalid_argument``;
* reads the body, at most ``max_body_size`` bytes (default 1 MiB) after
  decompression (``resource_exhausted``, as connect-go answers; ``gzip``
  bodies, which Connect clients send by default, are decompressed);
* decodes it: JSON with protobuf's JSON mapping, unknown fields ignored (as
  connect-go does, so clients and servers need not share one schema version);
  an empty or non-object body, malformed JSON or a wrong type is
  ``invalid_argument`` naming the problem; binary protobuf is checked and sent
  on as it came;
* calls the upstream method with the metadata the ``metadata`` hook builds
  (:func:`~kitpy.gateway.grpc_upstream.forward_headers`: the request id, plus
  the headers it names), the Context's deadline as the gRPC timeout;
* answers in the request's encoding, the upstream's metadata as headers and
  ``trailer-`` headers; a failed call is Connect's error JSON with the gRPC
  code (see :mod:`kitpy.gateway.connect_errors`).  The upstream's message is
  passed on for client-fault codes (``invalid_argument``, ``not_found``, ...);
  for the others (``unavailable``, ``internal``, ...) the caller gets a
  message of the gateway's own, since gRPC's may name internal addresses.

The handler is a kitpy HTTP :class:`~kitpy.transport.http.Server`, so it takes
the Server's options (``before``, ``after``, ``finalizer``, ``error_handler``,
``authenticate``, ``admission``, ...) and sends ``X-Request-Id``.  The upstream
is a ``grpc.aio`` channel or any ``Endpoint[UnaryCall, UnaryReply]`` (see
:mod:`kitpy.gateway.grpc_upstream`) -- e.g. ``grpc_upstream(channel)`` per
discovered instance behind a kitpy.sd balancer; ``UnaryCall.method.idempotent``
tells a retry layer whether a call is safe to repeat.

Example::

    descriptors = StaticDescriptors.from_modules(stringsvc_pb2)
    handler = connect_handler(channel, descriptors, timeout=5.0)
    app.router.add_route("*", "/{service}/{method}", handler)

GET requests (Connect's form for side-effect-free methods) are not served yet.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any, NamedTuple, Unpack

import grpc
import grpc.aio
from aiohttp import hdrs, web
from google.protobuf import json_format
from google.protobuf.message import DecodeError, EncodeError

from kitpy.context import Context
from kitpy.endpoint import Endpoint
from kitpy.errors import Code, Internal, InvalidArgument, KitError, Unimplemented, from_code
from kitpy.transport.http import Server
from kitpy.transport.http.codec import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_MAX_BODY_SIZE,
    READ_ERRORS,
    body_read_error,
)
from kitpy.transport.http.errors import MethodNotAllowed, RequestTimeout, UnsupportedMediaType
from kitpy.transport.http.types import ServerBefore, ServerOptions
from kitpy.transport.relay import relayed_message

from .connect_errors import UnknownMethod, connect_error_encoder, metadata_headers
from .descriptors import Descriptors, ProtoMethod
from .grpc_upstream import RequestMetadata, UnaryCall, UnaryReply, forward_headers, grpc_upstream

__all__ = ["DEFAULT_TIMEOUT", "connect_handler"]

DEFAULT_TIMEOUT = 30.0
"""The longest a call may take by default, in seconds, whatever the caller asks for."""

# -- the Connect side ---------------------------------------------------------------

_ACCEPT_POST = "application/json, application/proto"
_GZIP_MAGIC = b"\x1f\x8b"


def _parse_timeout(value: str) -> float:
    if not (value.isascii() and value.isdigit()) or len(value) > 10:
        raise InvalidArgument(
            f"invalid Connect-Timeout-Ms header {value[:32]!r}: "
            "expected a whole number of milliseconds, at most 10 digits"
        )
    return int(value) / 1000.0


def _deadline(timeout: float | None) -> ServerBefore:
    """A before func: the Context's deadline from Connect-Timeout-Ms, capped at ``timeout``."""

    def before(ctx: Context, request: web.Request) -> Context:
        header = request.headers.get("Connect-Timeout-Ms")
        if header is not None:
            ctx = ctx.with_timeout(_parse_timeout(header))
        if timeout is not None:
            ctx = ctx.with_timeout(timeout)
        return ctx

    return before


def _is_json(content_type: str | None) -> bool:
    """True for JSON, False for binary protobuf; 415 for anything else."""
    if content_type == "application/json":  # as Connect clients send it
        return True
    mime = (content_type or "").partition(";")[0].strip().lower()
    if mime == "application/json":
        return True
    if mime == "application/proto":
        return False
    hint = " (Connect streaming is not served)" if mime.startswith("application/connect+") else ""
    raise UnsupportedMediaType(
        f"Content-Type must be application/json or application/proto, "
        f"got {(content_type or 'none')[:80]}{hint}",
        headers={"Accept-Post": _ACCEPT_POST},
    )


def _method_name(path: str) -> str:
    """``"package.Service/Method"``: the path's last two segments (so the handler may be
    mounted on ``/{service}/{method}`` or under a prefix)."""
    method = path.rfind("/")
    return path[path.rfind("/", 0, method) + 1 :]


def _too_large(limit: int) -> KitError:
    return from_code(
        Code.RESOURCE_EXHAUSTED, f"request message is larger than the limit of {limit} bytes"
    )


async def _read_capped(request: web.Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _gunzip(body: bytes, limit: int) -> bytes:
    decompressor = zlib.decompressobj(wbits=31)
    try:
        data = decompressor.decompress(body, limit + 1)
    except zlib.error:
        raise InvalidArgument("request body is not valid gzip") from None
    if len(data) > limit:
        raise _too_large(limit)
    return data


async def _read_body(request: web.Request, limit: int, body_timeout: float) -> bytes:
    """The request's body, decompressed, at most ``limit`` bytes."""
    encoding = request.headers.get(hdrs.CONTENT_ENCODING, "identity").strip().lower()
    if encoding not in ("identity", "gzip", "deflate", "br", "zstd"):
        raise Unimplemented(
            f"Content-Encoding {encoding[:40]!r} is not supported; send gzip or identity"
        )
    length = request.content_length
    if length is not None and length > limit:
        raise _too_large(limit)
    stream = request.content
    try:
        if stream.is_eof():  # a small body came with the headers: take it without awaiting
            body = stream.read_nowait()
        else:
            timer = asyncio.timeout(body_timeout)
            try:
                async with timer:
                    body = await _read_capped(request, limit)
            except TimeoutError:
                if timer.expired():  # ours, not the request's deadline
                    raise RequestTimeout(
                        f"the request body did not arrive within {body_timeout:g} s"
                    ) from None
                raise
    except READ_ERRORS as exc:
        raise body_read_error(request, exc) from None
    # aiohttp decompresses gzip, deflate, br and zstd bodies itself unless its server
    # runs with auto_decompress=False; then gzip is done here.  A body still starting
    # with gzip's magic bytes is compressed: neither JSON nor protobuf can start so
    # (0x1f would be a field with wire type 7, which does not exist).
    if encoding == "gzip" and body.startswith(_GZIP_MAGIC):
        body = _gunzip(body, limit)
    if len(body) > limit:
        raise _too_large(limit)
    return body


def _from_json(method: ProtoMethod, body: bytes) -> bytes:
    """The binary request for a JSON body; ``InvalidArgument`` naming what is wrong."""
    full_name = method.request.DESCRIPTOR.full_name
    if not body.strip():
        raise InvalidArgument(f"request body is empty; send a JSON object ({full_name})")
    # the well-known types have JSON forms of their own ("1.5s", [1, 2], ...)
    if not full_name.startswith("google.protobuf.") and not body.lstrip().startswith(b"{"):
        raise InvalidArgument(f"request body must be a JSON object ({full_name})")
    try:
        return method.request_json.to_binary(body)
    except (json_format.Error, ValueError, TypeError, RecursionError, EncodeError) as exc:
        problem = relayed_message(str(exc), limit=300)
        raise InvalidArgument(f"invalid {full_name}: {problem}") from None


def _check_proto(method: ProtoMethod, body: bytes) -> bytes:
    try:
        method.request.FromString(body)
    except DecodeError:
        full_name = method.request.DESCRIPTOR.full_name
        raise InvalidArgument(f"request body is not a valid binary {full_name}") from None
    return body


def _to_json(method: ProtoMethod, payload: bytes) -> bytes:
    try:
        return method.response_json.to_json(payload)
    except (DecodeError, json_format.Error, ValueError, TypeError) as exc:
        full_name = method.response.DESCRIPTOR.full_name
        raise Internal(f"the upstream's reply is not a valid {full_name}") from exc


class _Request(NamedTuple):
    call: UnaryCall
    json: bool


class _Response(NamedTuple):
    body: bytes
    json: bool
    headers: list[tuple[str, str]]


def connect_handler(
    upstream: grpc.aio.Channel | Endpoint[UnaryCall, UnaryReply],
    descriptors: Descriptors,
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    metadata: RequestMetadata | None = None,
    **options: Unpack[ServerOptions],
) -> Server[Any, Any]:
    """An aiohttp handler serving Connect unary calls from ``upstream``'s gRPC methods.

    Mount it on ``/{service}/{method}`` (see the module docstring for what it
    does).  ``upstream`` is a ``grpc.aio`` channel or an endpoint such as
    ``grpc_upstream(channel)`` behind a balancer; ``descriptors`` finds each
    method's message types.

    * ``timeout`` -- the longest a call may take, in seconds, whatever
      ``Connect-Timeout-Ms`` or ``X-Timeout-Ms`` asks for (default 30; None:
      the caller's deadline only);
    * ``max_body_size`` -- the request limit in bytes after decompression
      (default 1 MiB, as the HTTP transport's);
    * ``body_timeout`` -- seconds a body still arriving may take (default 30; 408);
    * ``metadata`` -- builds the upstream call's metadata from the request
      (default ``forward_headers()``: the request id only);
    * ``options`` -- the kitpy HTTP Server's (``before`` funcs run after the
      deadline is set; ``error_encoder`` defaults to
      :func:`~kitpy.gateway.connect_errors.connect_error_encoder`).

    Example::

        app.router.add_route("*", "/{service}/{method}", connect_handler(channel, descriptors))
    """
    call_upstream = grpc_upstream(upstream) if isinstance(upstream, grpc.aio.Channel) else upstream
    request_metadata = forward_headers() if metadata is None else metadata

    async def decode(ctx: Context, request: web.Request) -> _Request:
        name = _method_name(request.path)
        method = await descriptors.lookup(name)
        if method is None:
            raise UnknownMethod(f"unknown method {name[:200]}")
        if request.method != "POST":
            raise MethodNotAllowed(
                f"{request.method[:20]} is not allowed: Connect unary calls are POSTs",
                headers={"Allow": "POST"},
            )
        json = _is_json(request.headers.get(hdrs.CONTENT_TYPE))
        version = request.headers.get("Connect-Protocol-Version")
        if version is not None and version.strip() != "1":
            raise InvalidArgument(f"Connect-Protocol-Version must be 1, got {version[:20]!r}")
        if method.streaming:
            raise Unimplemented(f"{method.name} streams; the gateway serves unary methods only")
        body = await _read_body(request, max_body_size, body_timeout)
        payload = _from_json(method, body) if json else _check_proto(method, body)
        return _Request(UnaryCall(method, payload, tuple(request_metadata(ctx, request))), json)

    async def endpoint(ctx: Context, request: _Request) -> _Response:
        call = request.call
        reply = await call_upstream(ctx, call)
        body = _to_json(call.method, reply.payload) if request.json else reply.payload
        headers = metadata_headers(reply.headers.items(), reply.trailers.items())
        return _Response(body, request.json, headers)

    def encode(ctx: Context, response: _Response) -> web.Response:
        result = web.Response(
            body=response.body,
            content_type="application/json" if response.json else "application/proto",
        )
        if response.headers:
            result.headers.extend(response.headers)
        return result

    options["before"] = (_deadline(timeout), *options.get("before", ()))
    options.setdefault("error_encoder", connect_error_encoder)
    return Server(endpoint, decode, encode, **options)
