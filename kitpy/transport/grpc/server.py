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

GrpcServer awaits it directly and has it parse the request bytes itself (one
coroutine per call).  A bare ``grpc.aio`` server awaits only ``async def``
handlers; there, delegate from one::

        async def Uppercase(self, request, context):
            return await self._uppercase(request, context)

Per call, in order: the Context is built (:data:`METHOD`, :data:`METADATA`,
:data:`PEER`, :data:`REQUEST_ID` and the client's deadline from
``grpc_context.time_remaining()``), ``before`` funcs run, the request is
decoded, the endpoint runs, the response is encoded, ``after`` funcs fill the
initial and trailing metadata, and ``finalizer`` funcs run last with the final
status code, whatever happened.

Errors: ``error_handler`` observes every exception (with its traceback);
``error_encoder`` turns it into a :class:`~kitpy.errors.KitError`, and the call
aborts with that code, message and ``headers`` (as trailing metadata).  The
default encoder passes a ``KitError`` through, maps ``TimeoutError`` to
DEADLINE_EXCEEDED and anything else to INTERNAL with a generic message, so an
exception's text never reaches the client.  A decoder failure that is not a
``KitError`` is INVALID_ARGUMENT.  When the client cancels (or its deadline
passes) grpc cancels the handler task, which cancels the endpoint.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import itertools
import os
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any, Generic, Self, TypeAlias, TypeVar

import grpc.aio

from kitpy.context import REQUEST_ID_SOURCE, Context, Key
from kitpy.endpoint import Endpoint
from kitpy.errors import Code, DeadlineExceeded, Internal, InvalidArgument, KitError

from .metadata import INVOCATION_PAIRS, METADATA, METHOD, PEER, Metadata, metadata_to_pairs
from .status import grpc_status

__all__ = [
    "ErrorEncoder",
    "ErrorHandler",
    "Server",
    "ServerAfter",
    "ServerBefore",
    "ServerFinalizer",
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


def default_error_encoder(ctx: Context, exc: BaseException) -> KitError:
    """``KitError`` as is; ``TimeoutError`` -> DEADLINE_EXCEEDED; else INTERNAL, generic message."""
    if isinstance(exc, KitError):
        return exc
    if isinstance(exc, TimeoutError):
        return DeadlineExceeded("deadline exceeded")
    return Internal("internal error")


_MAX_REQUEST_ID = 128
_NUMBER: Key[int] = Key("grpc.call_number")  # this Server's count, for new request ids

_new_context = object.__new__  # builds a Context without its __init__, as Context._derive does

_Pairs: TypeAlias = tuple[tuple[str, str | bytes], ...]

CALL_PAIRS: contextvars.ContextVar[_Pairs | None] = contextvars.ContextVar(
    "kitpy.grpc.call_pairs", default=None
)
"""The call's invocation metadata, set by GrpcServer's handler lookup (private to the package).

grpc.aio builds the metadata pairs for the lookup (``HandlerCallDetails``)
and again on every ``invocation_metadata()`` call (~3 us: a namedtuple per
entry).  The lookup runs in the call's own task just before the handler, so a
parsing Server takes the lookup's pairs from here instead of building them again.
"""


class _DecodeError(Exception):
    """Marks a decoder failure that is not a KitError (becomes INVALID_ARGUMENT)."""


class Server(Generic[Req, Resp, PbReq, PbResp]):
    """An endpoint served as one unary gRPC method (see the module docstring).

    ``decode_request(ctx, message)`` turns the request message into the
    endpoint's request; ``encode_response(ctx, response)`` turns the endpoint's
    response into the reply message.  Request ids not sent by the client are
    ``<random prefix>-<counter>``: unique per Server, cheap to make.
    ``method`` is the full method name put in the Context at :data:`METHOD`
    (grpc.aio does not tell a handler which method it serves).
    """

    __slots__ = (
        "_after",
        "_bare_root",
        "_before",
        "_decode",
        "_encode",
        "_endpoint",
        "_error_encoder",
        "_error_handler",
        "_finalizer",
        "_id_prefix",
        "_id_source",
        "_ids",
        "_invalid_message",
        "_method",
        "_parse",
        "_root",
    )

    def __init__(
        self,
        endpoint: Endpoint[Req, Resp],
        decode_request: Callable[[Context, PbReq], Req],
        encode_response: Callable[[Context, Resp], PbResp],
        *,
        method: str = "",
        before: Sequence[ServerBefore] = (),
        after: Sequence[ServerAfter] = (),
        error_encoder: ErrorEncoder = default_error_encoder,
        error_handler: ErrorHandler | None = None,
        finalizer: Sequence[ServerFinalizer] = (),
        root: Context | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._decode = decode_request
        self._encode = encode_response
        self._method = method
        self._before = tuple(before)
        self._after = tuple(after)
        self._error_encoder = error_encoder
        self._error_handler = error_handler
        self._finalizer = tuple(finalizer)
        self._root = Context() if root is None else root
        # the usual root (no values, no deadline): a call then builds one Context, not two
        self._bare_root = self._root.deadline is None and not self._root._values
        self._id_prefix = os.urandom(6).hex() + "-"
        self._ids = itertools.count(1)
        self._id_source = self._request_id  # one bound method, stored in every Context
        self._parse: Callable[[bytes], PbReq] | None = None
        self._invalid_message = ""

    def _parsing(self, parse: Callable[[bytes], PbReq], invalid_message: str) -> Self:
        """A copy that takes the request *bytes* and parses them itself (for GrpcServer).

        A request that does not parse is aborted with INVALID_ARGUMENT and
        ``invalid_message`` before anything else runs, as GrpcServer's guard does
        for other handlers; this saves the guard's own coroutine per call.
        """
        server = copy.copy(self)  # shares the id counter and prefix: ids stay unique
        server._id_source = server._request_id
        server._parse = parse
        server._invalid_message = invalid_message
        return server

    async def __call__(self, message: PbReq, context: grpc.aio.ServicerContext[Any, Any]) -> PbResp:
        parse = self._parse
        if parse is not None:
            try:
                message = parse(message)  # type: ignore[arg-type]  # bytes, from GrpcServer
            except Exception:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, self._invalid_message)
        # under GrpcServer, its handler lookup (in this call's task) has set the pairs
        pairs: Any = CALL_PAIRS.get() if parse is not None else None
        if pairs is None:
            pairs = context.invocation_metadata() or ()
        # METADATA and REQUEST_ID are derived from the pairs when read (by self._request_id)
        values: dict[Key[Any], Any] = {
            METHOD: self._method,
            INVOCATION_PAIRS: pairs,
            PEER: context.peer(),  # now: grpc.aio's context is not safe to read after the call
            _NUMBER: next(self._ids),
            REQUEST_ID_SOURCE: self._id_source,
        }
        remaining = context.time_remaining()
        root = self._root
        if self._bare_root:
            # Context._derive, inlined: two Python calls fewer, ~0.8 us a call in a loaded server
            ctx = _new_context(Context)
            ctx._values = values
            clock = ctx._clock = root._clock
            ctx._deadline = None if remaining is None else clock() + remaining
        else:
            ctx = root.with_values(values)
            if remaining is not None:
                ctx = ctx.with_timeout(remaining)
        code = Code.OK
        try:
            if self._before:
                metadata = ctx[METADATA]
                for before in self._before:
                    ctx = before(ctx, metadata)
            try:
                request = self._decode(ctx, message)
            except KitError:
                raise
            except Exception as exc:
                raise _DecodeError() from exc
            response = await self._endpoint(ctx, request)
            reply = self._encode(ctx, response)
            if self._after:
                initial: dict[str, str | bytes] = {}
                trailing: dict[str, str | bytes] = {}
                for after in self._after:
                    ctx = after(ctx, initial, trailing)
                if initial:
                    await context.send_initial_metadata(metadata_to_pairs(initial))
                if trailing:
                    context.set_trailing_metadata(metadata_to_pairs(trailing))
            return reply
        except asyncio.CancelledError:
            code = Code.DEADLINE_EXCEEDED if ctx.expired else Code.CANCELLED
            raise
        except Exception as exc:
            err = self._fail(ctx, exc)
            code = err.code
            await context.abort(
                grpc_status(code),
                err.message,
                metadata_to_pairs(err.headers) if err.headers else (),
            )
        finally:
            for finalizer in self._finalizer:
                finalizer(ctx, code)

    def _request_id(self, ctx: Context) -> str:
        """The call's id: its ``x-request-id`` metadata, else ``<server prefix>-<number>``."""
        request_id = None
        for key, value in ctx[INVOCATION_PAIRS]:
            if key == "x-request-id":
                request_id = value  # the last one wins, as in METADATA
        if isinstance(request_id, str) and 0 < len(request_id) <= _MAX_REQUEST_ID:
            return request_id
        return f"{self._id_prefix}{ctx[_NUMBER]}"

    def _fail(self, ctx: Context, exc: Exception) -> KitError:
        """Let the error handler observe ``exc``, then encode it (off the hot path)."""
        decode_failed = isinstance(exc, _DecodeError)
        real: BaseException = (exc.__cause__ or exc) if decode_failed else exc
        if self._error_handler is not None:
            self._error_handler(ctx, real)
        if decode_failed:
            return InvalidArgument("invalid request: could not decode the request message")
        try:
            err = self._error_encoder(ctx, exc)
        except Exception:  # a broken encoder must not leak its text to the client
            err = Internal("internal error")
        if err.code is Code.OK:
            err = Internal("internal error")
        return err
