"""The gRPC server side: an endpoint as a grpc.aio unary method.

:class:`Server` wraps an :class:`~kitpy.endpoint.Endpoint` with a request
decoder and a response encoder; the result is an async callable
``(request_message, grpc.aio.ServicerContext) -> response_message``.  Served
through :class:`~kitpy.transport.grpc.GrpcServer`, a Server *is* the
generated servicer's method::

    class StringServicer(pb_grpc.StringServiceServicer):
        Uppercase: Server[UppercaseRequest, UppercaseResponse, pb.UppercaseRequest, ...]

        def __init__(self, endpoints: Endpoints) -> None:
            self.Uppercase = Server(
                endpoints.uppercase_endpoint,
                lambda ctx, m: UppercaseRequest(s=m.s),
                lambda ctx, r: pb.UppercaseResponse(v=r.v),
                method="/stringsvc.v1.StringService/Uppercase",
            )

Per call, in order (one path, :meth:`Server.__call__`): the Context is made
from the Server's ``root`` with :data:`METHOD` and :data:`~kitpy.context.OPERATION`
(the ``method``), :data:`METADATA`, :data:`PEER`,
:data:`~kitpy.context.REQUEST_ID` and the client's deadline; ``admission`` (if
given) takes a slot or refuses; the ``before`` funcs run; an already-expired
deadline is DEADLINE_EXCEEDED; ``authenticate`` (if given) checks the caller
before the request is parsed; the request is decoded and the endpoint called;
the ``after`` funcs fill the initial and trailing metadata and the response is
encoded.  An error anywhere in that goes
one way: ``error_handler`` observes it (its Context tells in
:data:`~kitpy.context.ENDPOINT_ERROR` whether the endpoint raised it),
``error_encoder`` turns it into a :class:`~kitpy.errors.KitError`, and the
call aborts with that code, message and ``headers`` (as trailing metadata).
Every response carries the request id in the trailing metadata
``x-request-id``.  The ``finalizer`` funcs run last
with the final status code, whatever happened.

The default encoder (:func:`default_error_encoder`) passes a ``KitError``
through and gives any other exception the code :func:`kitpy.errors.error_code`
gives it (UNKNOWN for a plain exception, as grpc itself answers) with a generic
message, so an exception's text never reaches the client.  A decoder failure
that is not a ``KitError`` is INVALID_ARGUMENT, an encoder failure INTERNAL;
the handler sees that error, with the original as its ``__cause__``.  When the
client cancels (or its deadline passes) grpc cancels the handler task, which
cancels the endpoint.

Served through :class:`~kitpy.transport.grpc.GrpcServer`, a Server is awaited
directly and parses the request bytes itself (:meth:`Server.with_request_parser`).
A bare ``grpc.aio`` server awaits only ``async def`` handlers; there, delegate
from one::

        async def Uppercase(self, request, context):
            return await self._uppercase(request, context)
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import itertools
import os
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any, Generic, Self, TypeAlias, TypedDict, TypeVar

import grpc.aio

from kitpy.context import (
    ENDPOINT_ERROR,
    ENDPOINT_NAME,
    OPERATION,
    REQUEST_ID,
    Authenticate,
    Context,
    Key,
)
from kitpy.endpoint import Endpoint, endpoint_name
from kitpy.errors import Code, DeadlineExceeded, Internal, InvalidArgument, KitError, to_kit_error
from kitpy.ratelimit.concurrency import Admission
from kitpy.timeouts import TimeoutWheel

from .metadata import (
    INVOCATION_PAIRS,
    METADATA,
    METHOD,
    PEER,
    Metadata,
    incoming_request_id,
    metadata_to_pairs,
)
from .status import grpc_status

__all__ = [
    "ErrorEncoder",
    "ErrorHandler",
    "Server",
    "ServerAfter",
    "ServerBefore",
    "ServerFinalizer",
    "ServerOptions",
    "default_error_encoder",
]

Req = TypeVar("Req")
Resp = TypeVar("Resp")
PbReq = TypeVar("PbReq")
PbResp = TypeVar("PbResp")

ServerBefore: TypeAlias = Callable[[Context, Metadata], Context]
"""Runs before decoding with the invocation metadata; returns the Context to use."""
ServerAfter: TypeAlias = Callable[
    [Context, MutableMapping[str, str | bytes], MutableMapping[str, str | bytes]], Context
]
"""Runs after the endpoint succeeded; fills (initial, trailing) metadata to send."""
ServerFinalizer: TypeAlias = Callable[[Context, Code], None]
"""Runs last on every call with the final status code."""
ErrorHandler: TypeAlias = Callable[[Context, BaseException], None]
"""Observes an error (e.g. logs it); gets the real exception with its traceback."""
ErrorEncoder: TypeAlias = Callable[[Context, BaseException], KitError]
"""Turns any exception into the KitError whose code, message and headers are sent."""


class ServerOptions(TypedDict, total=False):
    """The Server's keyword options but ``method``, as one type, for helpers passing them on.

    Every key is the :class:`Server` option of that name::

        class Servicer(pb_grpc.GreeterServicer):
            def __init__(self, endpoints: Endpoints, **options: Unpack[ServerOptions]) -> None:
                self.Hello = Server(endpoints.hello, decode, encode, **options)
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


def default_error_encoder(ctx: Context, exc: BaseException) -> KitError:
    """The Server's default error encoder: a ``KitError`` as is, else one with a generic message.

    The code is :func:`kitpy.errors.error_code`'s: DEADLINE_EXCEEDED for a
    ``TimeoutError``, UNAVAILABLE for another ``OSError``, UNKNOWN for anything
    else (what grpc answers for an exception it was not told about).

    Example::

        default_error_encoder(ctx, ValueError("secret")).code   # Code.UNKNOWN
    """
    return to_kit_error(exc)


_REQUEST_ID_METADATA = "x-request-id"

_Pairs: TypeAlias = tuple[tuple[str, str | bytes], ...]

CALL_PAIRS: contextvars.ContextVar[_Pairs | None] = contextvars.ContextVar(
    "kitpy.grpc.call_pairs", default=None
)
"""The call's invocation metadata, set by GrpcServer's handler lookup (for this package).

grpc.aio builds the metadata pairs for the lookup (``HandlerCallDetails``)
and again on every ``invocation_metadata()`` call (a namedtuple per entry).
The lookup runs in the call's own task just before the handler, so a Server
made by :meth:`Server.with_request_parser` takes the lookup's pairs from here
instead of building them again.
"""


class Server(Generic[Req, Resp, PbReq, PbResp]):
    """An endpoint served as one unary gRPC method (see the module docstring).

    ``decode_request(ctx, message)`` turns the request message into the
    endpoint's request; ``encode_response(ctx, response)`` turns the endpoint's
    response into the reply message.

    Options (the HTTP Server takes the same ones, except ``method``):

    * ``method`` -- the full method name, ``"/package.Service/Method"``, put in
      the Context at :data:`METHOD` and :data:`~kitpy.context.OPERATION`
      (grpc.aio does not tell a handler which method it serves; GrpcServer
      fills it in when left empty).
    * ``root`` -- the Context every call's Context is made from (default ``Context()``).
    * ``enforce_deadline`` -- bound decoding and the endpoint by the Context's
      deadline when it is sooner than the call's own (from the root or a
      ``before`` func); grpc itself cancels the call at the client's deadline.
    * ``before`` / ``after`` / ``finalizer`` -- hook functions run in order.
    * ``error_handler`` -- sees every error with its traceback (e.g. logs it).
    * ``error_encoder`` -- turns an error into the ``KitError`` sent
      (default :func:`default_error_encoder`).
    * ``authenticate`` -- ``async (ctx) -> ctx``, run after the ``before`` funcs
      and before the request message is parsed or decoded: it returns the
      Context the endpoint gets (e.g. with claims) or raises, so an anonymous
      call is UNAUTHENTICATED whatever its message.  E.g. a JWT parser's
      ``parser.authenticate``.  Default None.
    * ``admission`` -- a :class:`~kitpy.ratelimit.ConcurrencyLimiter` (any
      :class:`~kitpy.ratelimit.Admission`) every call holds a slot of from
      before its message is parsed until it ends; refused calls get its error
      (UNAVAILABLE with ``retry-after``).  Share one between Servers, HTTP's too.

    Request ids not sent by the client are ``<random prefix>-<counter>``:
    unique per Server, cheap to make.
    """

    __slots__ = (
        "_admission",
        "_after",
        "_authenticate",
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
        "_invalid_message",
        "_method",
        "_named",
        "_parse",
        "_root",
        "_timeouts",
    )

    def __init__(
        self,
        endpoint: Endpoint[Req, Resp],
        decode_request: Callable[[Context, PbReq], Req],
        encode_response: Callable[[Context, Resp], PbResp],
        *,
        method: str = "",
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
        self._encode = encode_response
        self._method = method
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
        self._id_prefix = os.urandom(6).hex() + "-"
        self._ids = itertools.count(1)
        self._parse: Callable[[bytes], PbReq] | None = None
        self._invalid_message = ""

    @property
    def method(self) -> str:
        """The full method name this Server serves (``""`` when not given)."""
        return self._method

    def with_request_parser(
        self, parse: Callable[[bytes], PbReq], *, invalid_message: str, method: str = ""
    ) -> Self:
        """A copy that takes the request *bytes* and parses them itself (GrpcServer uses it).

        Bytes that do not parse are INVALID_ARGUMENT with ``invalid_message``,
        through the usual error path; this saves a guard coroutine per call.
        ``method`` names the method when this Server was built without one.
        The copy shares the request id counter, so ids stay unique.
        """
        server = copy.copy(self)
        server._parse = parse
        server._invalid_message = invalid_message
        server._method = self._method or method
        return server

    async def __call__(self, message: PbReq, context: grpc.aio.ServicerContext[Any, Any]) -> PbResp:
        """Serve one call (grpc.aio awaits this)."""
        parse = self._parse
        # under GrpcServer, its handler lookup (in this call's task) has set the pairs
        pairs: Any = CALL_PAIRS.get() if parse is not None else None
        if pairs is None:
            pairs = context.invocation_metadata() or ()
        # METADATA is derived from the pairs when read; every reply carries the request id
        values: dict[Key[Any], Any] = {
            METHOD: self._method,
            INVOCATION_PAIRS: pairs,
            PEER: context.peer(),  # now: grpc.aio's context is not safe to read after the call
            REQUEST_ID: incoming_request_id(pairs) or f"{self._id_prefix}{next(self._ids)}",
        }
        if self._method:
            values[OPERATION] = self._method
        ctx = self._root.with_values(values, timeout=context.time_remaining())
        # grpc cancels the call at the client's deadline by itself; a sooner one needs a timer
        granted = ctx.deadline if self._root.deadline is None else None
        code = Code.OK
        in_endpoint = False  # whether an error came out of the endpoint (see ENDPOINT_ERROR)
        admitted: Admission | None = None  # set while this call holds an admission slot
        try:
            # admitted first, so that a refusal costs the least (no span, no hooks), and
            # counted from here on: before the message is parsed
            if self._admission is not None:
                if not self._admission.try_acquire():
                    await self._admission.acquire(ctx)  # may queue: the deadline keeps running
                admitted = self._admission
            if self._before:
                metadata = ctx[METADATA]
                for before in self._before:
                    ctx = before(ctx, metadata)
            remaining = ctx.time_remaining()
            if remaining is not None and remaining <= 0.0:
                raise DeadlineExceeded("deadline exceeded before the call was handled")
            if self._authenticate is not None:  # the caller first, then its message
                ctx = await self._authenticate(ctx)
            if parse is not None:
                try:
                    message = parse(message)  # type: ignore[arg-type]  # bytes, from GrpcServer
                except Exception as exc:
                    raise InvalidArgument(self._invalid_message) from exc
            try:
                request = self._decode(ctx, message)
            except KitError:
                raise
            except Exception as exc:
                raise InvalidArgument(
                    "invalid request: could not decode the request message"
                ) from exc
            in_endpoint = True
            if remaining is None or not self._enforce_deadline or ctx.deadline == granted:
                response = await self._endpoint(ctx, request)
            else:  # sooner than the call's own deadline: the root's or a before func's
                with self._timeouts.timeout(remaining):
                    response = await self._endpoint(ctx, request)
            in_endpoint = False
            request_id = ctx[REQUEST_ID]
            if self._after:
                initial: dict[str, str | bytes] = {}
                trailing: dict[str, str | bytes] = {_REQUEST_ID_METADATA: request_id}
                for after in self._after:
                    ctx = after(ctx, initial, trailing)
                if initial:
                    await context.send_initial_metadata(metadata_to_pairs(initial))
                trailers = metadata_to_pairs(trailing)
            else:
                trailers = ((_REQUEST_ID_METADATA, request_id),)
            try:
                reply = self._encode(ctx, response)
            except Exception as exc:
                raise Internal("could not encode the response") from exc
            context.set_trailing_metadata(trailers)
            return reply
        except asyncio.CancelledError as cancelled:
            code = Code.DEADLINE_EXCEEDED if ctx.expired else Code.CANCELLED
            if self._error_handler is not None:  # a cancelled call is logged and counted too
                ctx = ctx.with_values({ENDPOINT_ERROR: in_endpoint, **self._named})
                late = DeadlineExceeded("deadline exceeded")
                self._error_handler(ctx, late if ctx.expired else to_kit_error(cancelled))
            raise
        except Exception as exc:
            ctx = ctx.with_values({ENDPOINT_ERROR: in_endpoint, **self._named})
            if self._error_handler is not None:
                self._error_handler(ctx, exc)
            err = self._encoded_error(ctx, exc)
            code = err.code
            headers = dict(err.headers) if err.headers else {}
            headers[_REQUEST_ID_METADATA] = ctx[REQUEST_ID]
            await context.abort(grpc_status(code), err.message, metadata_to_pairs(headers))
        finally:
            if admitted is not None:
                admitted.release()
            for finalizer in self._finalizer:
                finalizer(ctx, code)

    def _encoded_error(self, ctx: Context, exc: Exception) -> KitError:
        """What ``error_encoder`` makes of ``exc``; INTERNAL if it fails or says OK."""
        try:
            err = self._error_encoder(ctx, exc)
        except Exception:  # a broken encoder must not leak its text to the client
            return Internal("internal error")
        return Internal("internal error") if err.code is Code.OK else err
