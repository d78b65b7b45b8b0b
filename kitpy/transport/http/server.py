"""The HTTP server side: turn an endpoint into an aiohttp handler.

Per request, in this order: fill the Context (method, path, route, headers,
peer, request id, deadline from ``X-Timeout-Ms``), run the ``before`` funcs,
reject an already-expired deadline with 504, decode the request, call the
endpoint (bounded by the deadline), run the ``after`` funcs on the response
headers, encode the response.  An error anywhere in that goes one way:
``error_handler`` observes it, ``error_encoder`` writes the response.  The
``finalizer`` funcs run last on every request with the status and body size.

Everything is resolved when the Server is built; a request costs a Context,
the hooks you passed and nothing else (no task, no per-request lookups).
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
from multidict import CIMultiDict

from kitpy.context import Context, Key
from kitpy.endpoint import Endpoint
from kitpy.errors import DeadlineExceeded
from kitpy.transport.http.codec import _READ_ERRORS, JsonRequestDecoder, _read_error
from kitpy.transport.http.errors import encode_error
from kitpy.transport.http.keys import (
    HEADERS,
    METHOD,
    PATH,
    PEER,
    REQUEST_ID,
    REQUEST_ID_HEADER,
    ROUTE,
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
        "_ids",
        "_is_coroutine",
        "_is_coroutine_marker",
        "_json",
        "_root",
        "_route",
        "_template",
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
        self._route: web.AbstractRoute | None = None  # the last route seen, and its template
        self._template: str | None = None
        # aiohttp accepts only coroutine functions as handlers (anything else is
        # wrapped, with a DeprecationWarning): mark this callable object as one.
        if sys.version_info >= (3, 12):
            inspect.markcoroutinefunction(self)
        else:
            self._is_coroutine = getattr(asyncio.coroutines, "_is_coroutine", None)

    def _route_template(self, route: web.AbstractRoute) -> str | None:
        resource = route.resource
        template = None if resource is None else resource.canonical
        self._route, self._template = route, template
        return template

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        """Handle one request (aiohttp calls this)."""
        headers = request.headers
        request_id = headers.get(REQUEST_ID_HEADER)
        if not request_id or len(request_id) > _MAX_REQUEST_ID or not request_id.isascii():
            # non-ASCII bytes arrive surrogate-escaped: they would break JSON logs and headers
            request_id = f"{self._id_prefix}{next(self._ids)}"
        values: dict[Key[Any], Any] = {
            METHOD: request.method,
            PATH: request.path,
            HEADERS: headers,
            PEER: request.remote or "",
            REQUEST_ID: request_id,
        }
        route = request.match_info.route
        template = self._template if route is self._route else self._route_template(route)
        if template is not None:
            values[ROUTE] = template
        ctx = self._root.with_values(values)
        try:
            timeout = headers.get(TIMEOUT_HEADER)
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
            # A kitpy JSON decoder is run inline (check, read, parse): one coroutine less.
            json = self._json
            if timed:
                async with asyncio.timeout(remaining):
                    if json is not None and json.check(request):
                        response = await self._endpoint(ctx, json.parse(await request.read()))
                    else:
                        response = await self._endpoint(ctx, await self._decode(ctx, request))
            elif json is not None and json.check(request):
                response = await self._endpoint(ctx, json.parse(await request.read()))
            else:
                response = await self._endpoint(ctx, await self._decode(ctx, request))
            if self._after:
                out_headers: CIMultiDict[str] = CIMultiDict()
                after_ctx = ctx
                for after in self._after:
                    after_ctx = after(after_ctx, out_headers)
                result = self._encode(after_ctx, response)
                if out_headers:
                    result.headers.update(out_headers)
            else:
                result = self._encode(ctx, response)
        except Exception as exc:
            if isinstance(exc, _READ_ERRORS):  # aiohttp's own, from reading the body: 413 / 400
                exc = _read_error(request, exc)
            if self._error_handler is not None:
                self._error_handler(ctx, exc)
            result = self._error_encoder(ctx, exc)
        except asyncio.CancelledError:
            for finalize in self._finalizer:
                finalize(ctx, _CANCELLED_STATUS, 0)
            raise
        if self._finalizer:
            status = result.status
            size = _body_size(result)
            for finalize in self._finalizer:
                finalize(ctx, status, size)
        return result
