"""The whole contract of the HTTP transport: the shapes of its hooks and codecs.

Server side, per request::

    before funcs (Context, request)        -> Context
    decode_request(Context, request)       -> awaitable Req
        (or, first, decode_request.decode_now(Context, request) -> Req or NOT_YET, if it has one)
    endpoint(Context, Req)                 -> awaitable Resp
    after funcs (Context, response headers) -> Context
    encode_response(Context, Resp)         -> aiohttp response
    on any error: error_handler(Context, exc), then error_encoder(Context, exc) -> response
    finalizer funcs (Context, status, response body size), always, last

Client side, per call::

    before funcs (Context, outgoing headers) -> Context
    encode_request(Context, OutgoingRequest, Req)
    ... the HTTP exchange ...
    after funcs (Context, aiohttp.ClientResponse) -> Context
    decode_response(Context, aiohttp.ClientResponse) -> awaitable Resp   (2xx only)
    finalizer funcs (Context, error or None), always, last
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias, TypedDict, TypeVar

from aiohttp import ClientResponse, web
from multidict import CIMultiDict
from yarl import URL

from kitpy.context import Authenticate, Context
from kitpy.errors import KitError
from kitpy.ratelimit.concurrency import Admission

__all__ = [
    "ClientAfter",
    "ClientBefore",
    "ClientFinalizer",
    "DecodeNow",
    "DecodeRequest",
    "DecodeResponse",
    "EncodeRequest",
    "EncodeResponse",
    "ErrorDecoder",
    "ErrorEncoder",
    "ErrorHandler",
    "NOT_YET",
    "NotYet",
    "OutgoingRequest",
    "ServerAfter",
    "ServerBefore",
    "ServerFinalizer",
    "ServerOptions",
]

T = TypeVar("T")

ServerBefore: TypeAlias = Callable[[Context, web.Request], Context]
"""Runs before decode with the incoming request; returns the Context to go on with."""

ServerAfter: TypeAlias = Callable[[Context, CIMultiDict[str]], Context]
"""Runs after the endpoint succeeded; may add to the mutable response headers."""

ServerFinalizer: TypeAlias = Callable[[Context, int, int], None]
"""Runs last on every request: ``(ctx, http_status, response_body_size)``."""

ErrorHandler: TypeAlias = Callable[[Context, BaseException], None]
"""Observes every error (e.g. logs it); gets the real exception with its traceback."""

ErrorEncoder: TypeAlias = Callable[[Context, BaseException], web.StreamResponse]
"""Turns an error into the response to send."""


class ServerOptions(TypedDict, total=False):
    """The Server's keyword options as one type, for helpers that pass them through.

    Every key is the :class:`~kitpy.transport.http.Server` option of that
    name.  A function building several Servers takes them once::

        def make_app(endpoints: Endpoints, **options: Unpack[ServerOptions]) -> web.Application:
            app = web.Application()
            add_routes(app, {"POST /hello": Server(endpoints.hello, decode, encode, **options)})
            return app
    """

    root: Context | None
    enforce_deadline: bool
    before: Sequence[ServerBefore]
    after: Sequence[ServerAfter]
    error_encoder: ErrorEncoder
    error_handler: ErrorHandler | None
    finalizer: Sequence[ServerFinalizer]
    authenticate: Authenticate | None
    admission: Admission | None


DecodeRequest: TypeAlias = Callable[[Context, web.Request], Awaitable[T]]
"""Reads the incoming request into the endpoint's request value.

A decoder may also have a ``decode_now(ctx, request)`` method that decodes
without awaiting when it can -- a small body has usually arrived with the
headers -- and returns :data:`NOT_YET` when it would have to wait.  The Server
calls it first and awaits the decoder only for ``NOT_YET``, which spares a
coroutine per request (:class:`~kitpy.transport.http.JsonRequestDecoder` has one).
"""


class NotYet(enum.Enum):
    """The type of :data:`NOT_YET` (an enum, so that type checkers tell it from a value)."""

    NOT_YET = "not yet"


NOT_YET: Final = NotYet.NOT_YET
"""What a decoder's ``decode_now`` returns when the body has yet to arrive (see DecodeRequest)."""

DecodeNow: TypeAlias = Callable[[Context, web.Request], "T | Literal[NotYet.NOT_YET]"]
"""A decoder's ``decode_now`` method: the decoded request, or :data:`NOT_YET`."""

EncodeResponse: TypeAlias = Callable[[Context, T], web.StreamResponse]
"""Turns the endpoint's response value into an aiohttp response."""

ClientBefore: TypeAlias = Callable[[Context, CIMultiDict[str]], Context]
"""Runs before the request is sent; may add to the mutable outgoing headers."""

ClientAfter: TypeAlias = Callable[[Context, ClientResponse], Context]
"""Runs when a response arrived (any status), before it is decoded."""

ClientFinalizer: TypeAlias = Callable[[Context, "BaseException | None"], None]
"""Runs last on every call with the error that ended it, or None on success."""


@dataclass(slots=True)
class OutgoingRequest:
    """The request a :class:`~kitpy.transport.http.Client` is about to send.

    ``encode_request`` fills it: sets ``body`` (and its Content-Type header), and
    may change ``url`` (e.g. add a path segment or query) or ``method``.

    Example::

        def encode_get_user(ctx: Context, out: OutgoingRequest, req: GetUser) -> None:
            out.url = out.url / "users" / str(req.id)
    """

    method: str
    url: URL
    headers: CIMultiDict[str] = field(default_factory=CIMultiDict)
    body: bytes | None = None


EncodeRequest: TypeAlias = Callable[[Context, OutgoingRequest, T], None]
"""Fills the outgoing request from the endpoint's request value."""

DecodeResponse: TypeAlias = Callable[[Context, ClientResponse], Awaitable[T]]
"""Reads a successful (2xx) response into the endpoint's response value."""

ErrorDecoder: TypeAlias = Callable[[int, bytes, "str | None"], KitError]
"""Turns a non-2xx response (status, body, reason phrase) into the error the client raises."""
