"""The HTTP server side: turn an endpoint into an aiohttp handler.

Per request, in this order: fill the Context (method, path, route, headers,
peer, request id, deadline from ``X-Timeout-Ms``), run the ``before`` funcs,
reject an already-expired deadline with 504, decode the request, call the
endpoint (bounded by the deadline), run the ``after`` funcs on the response
headers, encode the response.  An error anywhere in that goes one way:
``error_handler`` observes it, ``error_encoder`` writes the response.  The
``finalizer`` funcs run last on every request with the status and body size.

Everything is resolved when the Server is built; a request costs a Context,
the hooks you passed and nothing else (no task, no per-request lookups).  The
Context stores the aiohttp request and a request number; the transport keys,
request id included, are derived from them when read (see
:mod:`~kitpy.transport.http.keys`).

The common case -- a :func:`~kitpy.transport.http.decode_json` decoder, no
``before`` funcs, no deadline header -- takes a short path with nothing to
await but the endpoint when the body has already arrived; everything else
takes the general path.  Both behave the same.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import os
import sys
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from aiohttp import web
from multidict import CIMultiDict, istr

from kitpy.context import REQUEST_ID_SOURCE, Context, Key
from kitpy.endpoint import Endpoint
from kitpy.errors import DeadlineExceeded
from kitpy.transport.http.codec import (
    _READ_ERRORS,
    JsonRequestDecoder,
    _read_error,
    read_buffered,
)
from kitpy.transport.http.errors import encode_error
from kitpy.transport.http.keys import (
    REQUEST,
    REQUEST_ID_HEADER,
    TIMEOUT_HEADER,
    parse_timeout,
)
from kitpy.transport.http.types import (
    DecodeRequest,
    EncodeResponse,
    ErrorEncoder,
    ErrorHandler,
    ServerAfter,
    ServerBefore,
    ServerFinalizer,
)

__all__ = ["Server"]

Req = TypeVar("Req")
Resp = TypeVar("Resp")

_MAX_REQUEST_ID = 128
_CANCELLED_STATUS = 499
_UNREAD: Any = object()  # the request has not been decoded yet
_NUMBER: Key[int] = Key("http.request_number")  # this Server's count, for new request ids
# istr keys: the headers lookup skips folding the key's case
_REQUEST_ID_KEY = istr(REQUEST_ID_HEADER)
_TIMEOUT_KEY = istr(TIMEOUT_HEADER)


def _body_size(response: web.StreamResponse) -> int:
    body = getattr(response, "body", None)
    if isinstance(body, bytes | bytearray):
        return len(body)
    length = response.content_length
    return length if length is not None else 0


class Server(Generic[Req, Resp]):
    """An aiohttp handler that serves one endpoint.

    Example::

        server = Server(uppercase_endpoint, decode_json(UppercaseRequest), encode_json)
        app.router.add_post("/uppercase", server)

    ``before`` / ``after`` / ``finalizer`` are sequences run in order (see
    :mod:`kitpy.transport.http.types` for their shapes).  ``error_handler`` sees
    every error with its traceback; ``error_encoder`` (default
    :func:`~kitpy.transport.http.encode_error`) writes the error response.
    The endpoint runs under ``asyncio.timeout`` when the Context has a deadline,
    unless ``enforce_deadline=False``.  Request ids not supplied by the caller
    (or not ASCII, or over 128 characters) are ``<random prefix>-<counter>``:
    unique per Server, cheap to make.
    """

    __slots__ = (
        "_after",
        "_before",
        "_decode",
        "_encode",
        "_endpoint",
        "_enforce_deadline",
        "_error_encoder",
        "_error_handler",
        "_finalizer",
        "_id_prefix",
        "_id_source",
        "_ids",
        "_is_coroutine",
        "_is_coroutine_marker",
        "_json",
        "_root",
        "_short",
    )

    def __init__(
        self,
        endpoint: Endpoint[Req, Resp],
        decode_request: DecodeRequest[Req],
        encode_response: EncodeResponse[Resp],
        *,
        before: Sequence[ServerBefore] = (),
        after: Sequence[ServerAfter] = (),
        error_encoder: ErrorEncoder = encode_error,
        error_handler: ErrorHandler | None = None,
        finalizer: Sequence[ServerFinalizer] = (),
        enforce_deadline: bool = True,
    ) -> None:
        self._endpoint = endpoint
        self._decode = decode_request
        self._json = decode_request if isinstance(decode_request, JsonRequestDecoder) else None
        self._encode = encode_response
        self._before = tuple(before)
        self._after = tuple(after)
        self._error_encoder = error_encoder
        self._error_handler = error_handler
        self._finalizer = tuple(finalizer)
        self._enforce_deadline = enforce_deadline
        self._root = Context()
        self._id_prefix = os.urandom(6).hex() + "-"
        self._ids = itertools.count(1)
        self._id_source = self._request_id  # one bound method, stored in every Context
        # the short path's decoder: a kitpy JSON decoder, and no before funcs
        self._short = None if self._before else self._json
        # aiohttp accepts only coroutine functions as handlers (anything else is
        # wrapped, with a DeprecationWarning): mark this callable object as one.
        if sys.version_info >= (3, 12):
            inspect.markcoroutinefunction(self)
        else:
            self._is_coroutine = getattr(asyncio.coroutines, "_is_coroutine", None)

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        """Handle one request (aiohttp calls this)."""
        # METHOD, PATH, ROUTE, HEADERS and PEER are derived from REQUEST when read,
        # REQUEST_ID from the request number by self._request_id
        ctx = self._root._derive(
            {REQUEST: request, _NUMBER: next(self._ids), REQUEST_ID_SOURCE: self._id_source}, None
        )
        short = self._short
        if short is None or _TIMEOUT_KEY in request.headers:
            return await self._serve(ctx, request)
        try:
            # arrived_body's two steps, inlined: this path is worth a call less
            if short.check(request) and (body := read_buffered(request)) is not None:
                response = await self._endpoint(ctx, short.parse(body))
            else:  # still arriving, or chunked: the decoder awaits it
                response = await self._endpoint(ctx, await short(ctx, request))
            result = self._respond(ctx, response) if self._after else self._encode(ctx, response)
        except Exception as exc:
            result = self._fail(ctx, request, exc)
        except asyncio.CancelledError:
            self._cancelled(ctx)
            raise
        if self._finalizer:
            self._finish(ctx, result)
        return result

    def _request_id(self, ctx: Context) -> str:
        """The request's id: its ``X-Request-Id``, else ``<this server's prefix>-<number>``."""
        request_id = ctx[REQUEST].headers.get(_REQUEST_ID_KEY)
        if request_id and len(request_id) <= _MAX_REQUEST_ID and request_id.isascii():
            return request_id
        # none, too long, or not ASCII (arrives surrogate-escaped: breaks JSON logs and headers)
        return f"{self._id_prefix}{ctx[_NUMBER]}"

    async def _serve(self, ctx: Context, request: web.Request) -> web.StreamResponse:
        """The general path: deadline header, before funcs, any decoder.

        Its error and finalizer handling mirrors ``__call__``'s on purpose: the short
        path stays one small coroutine, and the general one keeps every Context its
        before funcs made for the error handler and finalizers.
        """
        try:
            timeout = request.headers.get(_TIMEOUT_KEY)
            if timeout is not None:
                ctx = ctx.with_timeout(parse_timeout(timeout))
            for before in self._before:
                ctx = before(ctx, request)
            deadline = ctx.deadline
            timed = False
            remaining = 0.0
            if deadline is not None:
                remaining = deadline - ctx.clock()
                if remaining <= 0:
                    raise DeadlineExceeded("deadline exceeded before the request was handled")
                timed = self._enforce_deadline
            # a kitpy JSON decoder is run inline when the body has arrived: one coroutine less
            json = self._json
            decoded: Req = _UNREAD
            if json is not None and (body := json.arrived_body(request)) is not None:
                decoded = json.parse(body)
            if timed:
                async with asyncio.timeout(remaining):
                    if decoded is _UNREAD:
                        decoded = await self._decode(ctx, request)
                    response = await self._endpoint(ctx, decoded)
            else:
                if decoded is _UNREAD:
                    decoded = await self._decode(ctx, request)
                response = await self._endpoint(ctx, decoded)
            result = self._respond(ctx, response)
        except Exception as exc:
            result = self._fail(ctx, request, exc)
        except asyncio.CancelledError:
            self._cancelled(ctx)
            raise
        if self._finalizer:
            self._finish(ctx, result)
        return result

    def _respond(self, ctx: Context, response: Resp) -> web.StreamResponse:
        """Encode the endpoint's response, after the after funcs have filled headers."""
        if not self._after:
            return self._encode(ctx, response)
        out_headers: CIMultiDict[str] = CIMultiDict()
        for after in self._after:
            ctx = after(ctx, out_headers)
        result = self._encode(ctx, response)
        if out_headers:
            result.headers.update(out_headers)
        return result

    def _fail(self, ctx: Context, request: web.Request, exc: Exception) -> web.StreamResponse:
        """The error response for ``exc``, after the error handler has seen it."""
        if isinstance(exc, _READ_ERRORS):  # aiohttp's own, from reading the body: 413 / 400
            exc = _read_error(request, exc)
        if self._error_handler is not None:
            self._error_handler(ctx, exc)
        return self._error_encoder(ctx, exc)

    def _cancelled(self, ctx: Context) -> None:
        for finalize in self._finalizer:
            finalize(ctx, _CANCELLED_STATUS, 0)

    def _finish(self, ctx: Context, result: web.StreamResponse) -> None:
        status = result.status
        size = _body_size(result)
        for finalize in self._finalizer:
            finalize(ctx, status, size)
