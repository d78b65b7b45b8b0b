"""The HTTP server side: turn an endpoint into an aiohttp handler.

Per request, in this order (one path, :meth:`Server.__call__`): the Context is
made from the Server's ``root`` (method, path, route, headers, peer, request
id and operation readable; deadline from ``X-Timeout-Ms``), ``admission``
(if given) takes a slot or refuses, the ``before`` funcs run, an
already-expired deadline is answered 504, ``authenticate`` (if given) checks
the caller before the body is read, the request is decoded (without awaiting
when the decoder has a ``decode_now`` and the body has arrived) and the endpoint
called (all bounded by the deadline), the ``after``
funcs fill response headers and the response is encoded.  An error anywhere
in that goes one way: ``error_handler`` observes it (the Context it gets
tells in :data:`~kitpy.context.ENDPOINT_ERROR` whether the endpoint raised
it), ``error_encoder`` writes the response.  Every response carries
``X-Request-Id``.  The ``finalizer`` funcs run last on every request with the
status and body size.

Everything is resolved when the Server is built; a request costs a Context,
the hooks you passed and nothing else (no task, no per-request lookups).  The
Context stores the aiohttp request and a request number; the transport keys,
request id and operation included, are derived from them when read (see
:mod:`~kitpy.transport.http.keys`).  Reading a body that has already arrived
awaits nothing, and costs no coroutine when the decoder has a ``decode_now``
(:class:`~kitpy.transport.http.JsonRequestDecoder` does): what to check and how
to read is the decoder's business, not a second path here.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import os
import sys
from collections.abc import Sequence
from typing import Any, Generic, Literal, TypeVar

from aiohttp import web
from multidict import CIMultiDict, istr

from kitpy.context import (
    ENDPOINT_ERROR,
    ENDPOINT_NAME,
    OPERATION_SOURCE,
    REQUEST_ID,
    Authenticate,
    Context,
    Key,
)
from kitpy.endpoint import Endpoint, endpoint_name
from kitpy.errors import DeadlineExceeded, Internal, InvalidArgument
from kitpy.ratelimit.concurrency import Admission
from kitpy.timeouts import TimeoutWheel
from kitpy.transport.http.codec import body_read_error
from kitpy.transport.http.errors import default_error_encoder
from kitpy.transport.http.keys import (
    REQUEST,
    REQUEST_ID_HEADER,
    ROUTE,
    TIMEOUT_HEADER,
    incoming_request_id,
    parse_timeout,
)
from kitpy.transport.http.types import (
    NOT_YET,
    DecodeNow,
    DecodeRequest,
    EncodeResponse,
    ErrorEncoder,
    ErrorHandler,
    NotYet,
    ServerAfter,
    ServerBefore,
    ServerFinalizer,
)

__all__ = ["Server"]

Req = TypeVar("Req")
Resp = TypeVar("Resp")

_CANCELLED_STATUS = 499
# istr keys: the headers lookup skips folding the key's case
_REQUEST_ID_KEY = istr(REQUEST_ID_HEADER)
_TIMEOUT_KEY = istr(TIMEOUT_HEADER)


def _operation(ctx: Context) -> str:
    """The OPERATION source: ``"<METHOD> <route>"``, or the path when no route matched."""
    request = ctx[REQUEST]
    route: str | None = ctx.get(ROUTE)
    return f"{request.method} {route or request.path}"


_BYTES = (bytes, bytearray)  # a tuple: ``bytes | bytearray`` would build a union per call


def _body_size(response: web.StreamResponse) -> int:
    body = getattr(response, "body", None)
    if isinstance(body, _BYTES):
        return len(body)
    length = response.content_length
    return length if length is not None else 0


def _not_yet(ctx: Context, request: web.Request) -> Literal[NotYet.NOT_YET]:
    """The ``decode_now`` of a decoder that has none: always await it."""
    return NOT_YET


class _NoLag:
    """The loop lag of a Server without a LoopLag: none."""

    value = 0.0


_NO_LAG: Any = _NoLag()


class Server(Generic[Req, Resp]):
    """An aiohttp handler that serves one endpoint.

    Example::

        server = Server(uppercase_endpoint, decode_json(UppercaseRequest), encode_json)
        app.router.add_post("/uppercase", server)

    Options (the gRPC Server takes the same ones):

    * ``root`` -- the Context every request's Context is made from (values and
      deadline are inherited; default ``Context()``).
    * ``enforce_deadline`` -- run decoding and the endpoint under a timeout
      (:class:`~kitpy.timeouts.TimeoutWheel`'s) when the Context has a deadline
      (default True).
    * ``before`` / ``after`` / ``finalizer`` -- sequences of hook functions run
      in order (see :mod:`kitpy.transport.http.types` for their shapes).
    * ``error_handler`` -- sees every error with its traceback (e.g. logs it).
    * ``error_encoder`` -- writes the error response (default
      :func:`~kitpy.transport.http.default_error_encoder`).
    * ``authenticate`` -- ``async (ctx) -> ctx``, run after the ``before`` funcs
      and before the body is read: it returns the Context the endpoint gets
      (e.g. with claims) or raises, so an anonymous request is refused (401)
      before its body can draw a 400, 413 or 415.  E.g. a JWT parser's
      ``parser.authenticate`` (see :mod:`kitpy.auth.jwt`).  Default None.
    * ``admission`` -- a :class:`~kitpy.ratelimit.ConcurrencyLimiter` (any
      :class:`~kitpy.ratelimit.Admission`) that every request holds a slot of
      from the moment its headers are read until its response is ready, so a
      client stalling its body counts against the limit; refused requests get
      its error (503 with ``Retry-After``).  Share one between Servers.  When
      it has a :class:`~kitpy.ratelimit.LoopLag` (``lag``), the loop's current
      lag -- how long a request waits for its turn -- is taken off the caller's
      ``X-Timeout-Ms``, so the deadline runs from the request's arrival.

    A plain exception from the endpoint is answered 500 with code UNKNOWN and
    a generic message; a failure to encode the response is INTERNAL (the
    handler sees an ``Internal`` whose cause is the encoder's exception).
    Request ids not supplied by the caller (or not ASCII, or over 128
    characters) are ``<random prefix>-<counter>``: unique per Server, cheap to
    make; the id in the Context is sent back in ``X-Request-Id``.
    """

    __slots__ = (
        "_admission",
        "_after",
        "_authenticate",
        "_before",
        "_decode",
        "_decode_now",
        "_encode",
        "_endpoint",
        "_enforce_deadline",
        "_error_encoder",
        "_error_handler",
        "_finalizer",
        "_id_prefix",
        "_ids",
        "_is_coroutine",
        "_is_coroutine_marker",
        "_lag",
        "_named",
        "_root",
        "_timeouts",
    )

    def __init__(
        self,
        endpoint: Endpoint[Req, Resp],
        decode_request: DecodeRequest[Req],
        encode_response: EncodeResponse[Resp],
        *,
        root: Context | None = None,
        enforce_deadline: bool = True,
        before: Sequence[ServerBefore] = (),
        after: Sequence[ServerAfter] = (),
        error_encoder: ErrorEncoder = default_error_encoder,
        error_handler: ErrorHandler | None = None,
        finalizer: Sequence[ServerFinalizer] = (),
        authenticate: Authenticate | None = None,
        admission: Admission | None = None,
    ) -> None:
        self._endpoint = endpoint
        name = endpoint_name(endpoint)  # for the error path's Context (ENDPOINT_NAME)
        self._named: dict[Key[Any], Any] = {} if name is None else {ENDPOINT_NAME: name}
        self._decode = decode_request
        # a decoder that can decode without awaiting (a body that came with the headers);
        # without one, every request is awaited
        self._decode_now: DecodeNow[Req] = getattr(decode_request, "decode_now", _not_yet)
        self._encode = encode_response
        self._root = Context() if root is None else root
        self._enforce_deadline = enforce_deadline
        self._timeouts = TimeoutWheel()  # deadlines share timers: cheaper than asyncio.timeout
        self._before = tuple(before)
        self._after = tuple(after)
        self._error_encoder = error_encoder
        self._error_handler = error_handler
        self._finalizer = tuple(finalizer)
        self._authenticate = authenticate
        self._admission = admission
        self._lag = getattr(admission, "lag", None) or _NO_LAG
        self._id_prefix = os.urandom(6).hex() + "-"
        self._ids = itertools.count(1)
        # aiohttp accepts only coroutine functions as handlers (anything else is
        # wrapped, with a DeprecationWarning): mark this callable object as one.
        if sys.version_info >= (3, 12):
            inspect.markcoroutinefunction(self)
        else:  # 3.11 has no public way: set the marker asyncio.iscoroutinefunction reads
            self._is_coroutine = getattr(asyncio.coroutines, "_is_coroutine", None)

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        """Handle one request (aiohttp calls this)."""
        # METHOD, PATH, ROUTE, HEADERS, PEER and OPERATION are derived from REQUEST
        # when read; the request id is made now, since every response carries it
        request_id = incoming_request_id(request.headers) or f"{self._id_prefix}{next(self._ids)}"
        values: dict[Key[Any], Any] = {
            REQUEST: request,
            REQUEST_ID: request_id,
            OPERATION_SOURCE: _operation,
        }
        header = request.headers.get(_TIMEOUT_KEY)
        bad_header: InvalidArgument | None = None
        try:
            # the deadline runs from the request's arrival, not from when its turn came: the
            # event loop's current lag (the admission's LoopLag) is the time it queued
            budget = None if header is None else parse_timeout(header) - self._lag.value
        except InvalidArgument as exc:  # answered 400 below, with the Context made
            budget, bad_header = None, exc
        ctx = self._root.with_values(values, timeout=budget)
        in_endpoint = False  # whether an error came out of the endpoint (see ENDPOINT_ERROR)
        admitted: Admission | None = None  # set while this request holds an admission slot
        try:
            if bad_header is not None:
                raise bad_header
            # admitted first, so that a refusal costs the least (no span, no hooks), and
            # counted from here on: before the body is read
            if self._admission is not None:
                if not self._admission.try_acquire():
                    await self._admission.acquire(ctx)  # may queue: the deadline keeps running
                admitted = self._admission
            for before in self._before:
                ctx = before(ctx, request)
            remaining = ctx.time_remaining()
            if remaining is not None and remaining <= 0.0:
                raise DeadlineExceeded("deadline exceeded before the request was handled")
            if remaining is None or not self._enforce_deadline:
                if self._authenticate is not None:  # the caller first, then its body
                    ctx = await self._authenticate(ctx)
                decoded = self._decode_now(ctx, request)
                if decoded is NOT_YET:
                    decoded = await self._decode(ctx, request)
                in_endpoint = True
                response = await self._endpoint(ctx, decoded)
            else:
                with self._timeouts.timeout(remaining):
                    if self._authenticate is not None:
                        ctx = await self._authenticate(ctx)
                    decoded = self._decode_now(ctx, request)
                    if decoded is NOT_YET:
                        decoded = await self._decode(ctx, request)
                    in_endpoint = True
                    response = await self._endpoint(ctx, decoded)
            in_endpoint = False
            headers: CIMultiDict[str] | None = None
            if self._after:
                headers = CIMultiDict()
                for after in self._after:
                    ctx = after(ctx, headers)
            try:
                result = self._encode(ctx, response)
            except Exception as exc:
                raise Internal("could not encode the response") from exc
            if headers:
                result.headers.update(headers)
        except asyncio.CancelledError:
            for finalize in self._finalizer:
                finalize(ctx, _CANCELLED_STATUS, 0)
            raise
        except Exception as exc:
            error = body_read_error(request, exc)  # aiohttp's, from reading the body: 413 / 400
            ctx = ctx.with_values({ENDPOINT_ERROR: in_endpoint, **self._named})
            if self._error_handler is not None:
                self._error_handler(ctx, error)
            result = self._error_encoder(ctx, error)
        finally:
            if admitted is not None:
                admitted.release()
        # a before func may have set another request id: the Context's is the one logged
        result.headers[_REQUEST_ID_KEY] = ctx[REQUEST_ID] if self._before else request_id
        if getattr(request.protocol, "draining", False):  # shutting down: reconnect elsewhere
            result.force_close()
        if self._finalizer:
            status, size = result.status, _body_size(result)
            for finalize in self._finalizer:
                finalize(ctx, status, size)
        return result
