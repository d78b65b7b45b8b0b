"""Streaming gRPC on grpc.aio: a StreamEndpoint served as a streaming method, and called as one.

:class:`StreamServer` serves a :class:`~kitpy.endpoint.stream.StreamEndpoint`
as one server-streaming (``"unary_stream"``), client-streaming
(``"stream_unary"``) or bidi (``"stream_stream"``) method; :class:`StreamClient`
is one remote streaming method as a StreamEndpoint.  Both take the options of
their unary counterparts (:class:`~kitpy.transport.grpc.Server`,
:class:`~kitpy.transport.grpc.Client`) with the same meaning, so a stream is
logged, guarded and timed the way a call is::

    class ChatServicer(pb_grpc.ChatServicer):
        def __init__(self, endpoints: Endpoints) -> None:
            self.Talk = StreamServer(
                endpoints.talk,
                lambda ctx, m: m.text,
                lambda ctx, reply: pb.Line(text=reply),
                kind="stream_stream",
                method="/chat.v1.Chat/Talk",
            )

    talk = StreamClient(channel, "chat.v1.Chat", "Talk", lambda c, t: pb.Line(text=t),
                        lambda c, m: m.text, pb.Line, kind="stream_stream")
    async with contextlib.aclosing(talk(ctx, messages("hi", "bye"))) as replies:
        async for reply in replies:
            ...

Per stream, in order (:meth:`StreamServer.__call__`): the Context (METHOD,
OPERATION, METADATA, PEER, REQUEST_ID, the client's deadline), the
``admission`` slot (held while the stream opens, given back when the endpoint
starts), the ``before`` funcs, an expired deadline refused, ``authenticate`` --
once, before any request message is read; then the endpoint runs with the
decoded requests and each response is encoded and written.  ``context.write``
waits for HTTP/2 flow control, so a client that stops reading stops the
endpoint (at its next ``yield``) instead of
growing a buffer.  A request message that does not parse or decode ends the
stream INVALID_ARGUMENT, whatever the endpoint does with the error.  The
``after`` funcs run once, before the first response is written: they fill the
initial metadata sent then and the trailing metadata sent at the end (with
``x-request-id``).  The deadline -- the client's, or a sooner one from ``root``
or a ``before`` func when ``enforce_deadline`` -- covers the whole stream.
Errors go the unary Server's one way (``error_handler``, ``error_encoder``,
abort with the code, message and headers); the endpoint's response iterator is
always closed (:func:`~kitpy.endpoint.stream.close_stream`), so its ``finally``
blocks run before the ``error_handler`` and the ``finalizer`` funcs, which get
CANCELLED (DEADLINE_EXCEEDED once the deadline has passed) when the client
cancels.

Served through :class:`~kitpy.transport.grpc.GrpcServer`, a StreamServer can
*be* the servicer's method (``self.Talk = StreamServer(...)``): GrpcServer
checks its ``kind`` against the method's, hands grpc.aio its bound ``async
def`` (grpc.aio runs an object that is not a coroutine function as a *sync*
handler) and lets it parse the request bytes (bad bytes are INVALID_ARGUMENT,
not grpc's UNKNOWN).  With a bare ``grpc.aio`` server delegate from an ``async
def`` servicer method, as for the unary Server::

        async def Talk(self, requests, context):
            return await self._talk(requests, context)
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import os
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Sequence
from operator import methodcaller
from typing import Any, Final, Generic, Literal, Self, TypeAlias, TypeVar, cast, get_args

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
from kitpy.endpoint import endpoint_name
from kitpy.endpoint.stream import StreamEndpoint, close_stream, messages
from kitpy.errors import (
    Cancelled,
    Code,
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    KitError,
    Unavailable,
    to_kit_error,
)
from kitpy.ratelimit.concurrency import Admission

from .client import (
    MAX_TIMEOUT,
    ClientAfter,
    ClientBefore,
    ClientFinalizer,
    ErrorDecoder,
    oversize_reply,
)
from .metadata import (
    INVOCATION_PAIRS,
    METADATA,
    METHOD,
    PEER,
    OutgoingMetadata,
    incoming_request_id,
    metadata_from_pairs,
    metadata_to_pairs,
)
from .server import (
    CALL_PAIRS,
    ErrorEncoder,
    ErrorHandler,
    ServerAfter,
    ServerBefore,
    ServerFinalizer,
    default_error_encoder,
)
from .status import error_from_rpc_error, grpc_status

__all__ = ["StreamClient", "StreamKind", "StreamServer"]

Req = TypeVar("Req")
Resp = TypeVar("Resp")
PbReq = TypeVar("PbReq")
PbResp = TypeVar("PbResp")
T = TypeVar("T")

StreamKind: TypeAlias = Literal["unary_stream", "stream_unary", "stream_stream"]
"""Which streaming method: server streaming, client streaming or bidi (gRPC's own names)."""

_KINDS: Final = get_args(StreamKind)
_REQUEST_ID_METADATA = "x-request-id"
_FAILED_WRITE = "Internal error from Core"  # grpc.aio's details for a refused write
_NO_REPLY: Final = object()  # a client-streaming call's response, before the endpoint gave it
_serialize: Callable[[Any], bytes] = methodcaller("SerializeToString")


def _checked(kind: str) -> StreamKind:
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, _KINDS))}, got {kind!r}")
    return cast("StreamKind", kind)


class _Failure:
    """The error that ended a stream's requests (set by whoever saw it), else None."""

    __slots__ = ("error",)

    def __init__(self) -> None:
        self.error: Exception | None = None


class _FirstStatus:
    """The status a streaming call ended with first, kept from grpc.aio overwriting it.

    grpc.aio (1.85; grpc/grpc#36066) sets the status ``INTERNAL: Internal
    error from Core`` when a client write fails because the server's status
    has just ended the call -- a client still sending when the server refuses
    (UNAUTHENTICATED) or fails its stream -- overwriting that status, or being
    overwritten by it, whichever comes second.  A done callback sees the status
    set first; :meth:`error` keeps the server's whichever came first.
    """

    __slots__ = ("_error",)

    def __init__(self) -> None:
        self._error: grpc.aio.AioRpcError | None = None

    def capture(self, call: grpc.aio.Call) -> None:
        """The call's done callback: keep its error (None for OK), if it can be read at once."""
        code = _settled(call.code())
        if code is None or code is grpc.StatusCode.OK:
            return
        self._error = grpc.aio.AioRpcError(
            code,
            _settled(call.initial_metadata()),
            _settled(call.trailing_metadata()),
            _settled(call.details()),
        )

    def error(self, seen: grpc.aio.AioRpcError) -> grpc.aio.AioRpcError:
        """``seen``, unless it is grpc.aio's failed-write status and another came first."""
        first = self._error
        if first is not None and _failed_write(seen) and not _failed_write(first):
            return first
        return seen


def _failed_write(err: grpc.aio.AioRpcError) -> bool:
    """Whether ``err`` is the status grpc.aio sets for a write that Core refused."""
    return err.code() is grpc.StatusCode.INTERNAL and err.details() == _FAILED_WRITE


def _settled(result: Coroutine[Any, Any, T]) -> T | None:
    """The value of a coroutine that finishes without waiting, else None (it is closed).

    grpc.aio's ``code()``, ``details()``, ... are coroutines that return at once
    when the call is done, so a done callback (which cannot await) reads them so.
    """
    try:
        result.send(None)
    except StopIteration as done:
        value: T = done.value
        return value
    result.close()
    return None


class StreamServer(Generic[Req, Resp, PbReq, PbResp]):
    """A StreamEndpoint served as one streaming gRPC method (see the module docstring).

    ``decode_request(ctx, message)`` turns each request message into the
    endpoint's request; ``encode_response(ctx, response)`` turns each of the
    endpoint's responses into a reply message.  ``kind`` is the method's kind:
    ``"unary_stream"`` (the endpoint's request iterator yields the one
    request), ``"stream_unary"`` (the endpoint must yield exactly one response;
    :func:`~kitpy.endpoint.stream.client_stream` makes one) or
    ``"stream_stream"``.

    The other options are the unary :class:`~kitpy.transport.grpc.Server`'s,
    with the same meaning and defaults -- ``method``, ``root``,
    ``enforce_deadline``, ``before``, ``after``, ``error_encoder``,
    ``error_handler``, ``finalizer``, ``authenticate``, ``admission`` -- taken
    per stream: ``authenticate`` runs once before the first request message is
    read, the ``admission`` slot is held while the stream opens (to cap the
    streams open at once, ``lift(concurrency_limit(...))``), the deadline
    covers the whole stream, the ``after`` funcs run once before the first
    response is written.

    Example::

        @server_stream
        async def countdown(ctx: Context, n: int) -> AsyncIterator[int]:
            for i in range(n, 0, -1):
                yield i

        self.Countdown = StreamServer(countdown, lambda c, m: m.value,
                                      lambda c, i: Int64Value(value=i), kind="unary_stream")
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
        "_kind",
        "_method",
        "_named",
        "_parse",
        "_root",
        "_served",
    )

    def __init__(
        self,
        endpoint: StreamEndpoint[Req, Resp],
        decode_request: Callable[[Context, PbReq], Req],
        encode_response: Callable[[Context, Resp], PbResp],
        *,
        kind: StreamKind,
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
        self._kind = _checked(kind)
        self._endpoint = endpoint
        name = endpoint_name(endpoint)  # for the error path's Context (ENDPOINT_NAME)
        self._named: dict[Key[Any], Any] = {} if name is None else {ENDPOINT_NAME: name}
        self._decode = decode_request
        self._encode = encode_response
        self._method = method
        self._root = Context() if root is None else root
        self._enforce_deadline = enforce_deadline
        self._before = tuple(before)
        self._after = tuple(after)
        self._error_encoder = error_encoder
        self._error_handler = error_handler
        self._finalizer = tuple(finalizer)
        self._authenticate = authenticate
        self._admission = admission
        self._id_prefix = os.urandom(6).hex() + "-"
        self._ids = itertools.count(1)
        self._parse: Callable[[bytes], Any] | None = None
        self._invalid_message = ""
        self._served = False  # by GrpcServer, whose handler lookup sets CALL_PAIRS

    @property
    def kind(self) -> StreamKind:
        """The kind of method this StreamServer serves."""
        return self._kind

    @property
    def method(self) -> str:
        """The full method name this StreamServer serves (``""`` when not given)."""
        return self._method

    def with_request_parser(
        self,
        parse: Callable[[bytes], Any] | None,
        *,
        invalid_message: str,
        method: str = "",
    ) -> Self:
        """A copy that gets request *bytes* and parses each message itself (GrpcServer uses it).

        A message that does not parse ends the stream INVALID_ARGUMENT with
        ``invalid_message`` (and which message it was).  ``parse=None`` keeps
        the messages as grpc hands them over.  ``method`` names the method when
        this StreamServer was built without one.  The copy shares the request
        id counter, so ids stay unique.
        """
        server = copy.copy(self)
        server._parse = parse
        server._invalid_message = invalid_message
        server._method = self._method or method
        server._served = True
        return server

    async def __call__(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        """Serve one stream (grpc.aio awaits this): the reply of a client-streaming call, else None.

        ``request`` is the request message of a ``unary_stream`` call, grpc's
        request iterator otherwise.
        """
        pairs: Any = CALL_PAIRS.get() if self._served else None
        if pairs is None:
            pairs = context.invocation_metadata() or ()
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
        admitted: Admission | None = None  # set while this stream holds an admission slot
        failure = _Failure()  # the first request message that did not parse or decode
        try:
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
                raise DeadlineExceeded("deadline exceeded before the stream was handled")
            if self._authenticate is not None:  # once, before any request message is read
                ctx = await self._authenticate(ctx)
            if self._kind == "unary_stream":
                requests: AsyncIterator[Req] = messages(self._decoded(ctx, request, 0, failure))
            else:
                requests = self._requests(ctx, request, failure)
            sooner = self._enforce_deadline and ctx.deadline != granted
            trailers: OutgoingMetadata | None = None  # set once the after funcs have run
            reply: Any = _NO_REPLY
            if admitted is not None:  # the stream is open: see "admission"
                admitted.release()
                admitted = None
            in_endpoint = True
            responses = self._endpoint(ctx, requests)
            # the timer covers the whole stream; None: grpc's own deadline does
            async with asyncio.timeout(remaining if sooner else None):
                try:
                    while True:
                        in_endpoint = True
                        try:
                            response = await anext(responses)
                        except StopAsyncIteration:
                            break
                        in_endpoint = False
                        if failure.error is not None:  # the endpoint went on regardless
                            raise failure.error
                        if trailers is None:
                            ctx, trailers = await self._start_reply(ctx, context)
                        try:
                            message = self._encode(ctx, response)
                        except Exception as exc:
                            raise Internal("could not encode a response") from exc
                        if self._kind != "stream_unary":
                            await context.write(message)  # waits while the client does not read
                        elif reply is _NO_REPLY:
                            reply = message
                        else:
                            raise Internal(
                                "the endpoint gave a client-streaming call two responses"
                            )
                    in_endpoint = False
                except Exception:
                    if failure.error is None:
                        raise
                    in_endpoint = False  # a bad request message, as the endpoint saw it
                    raise failure.error  # noqa: B904  # it carries its own cause
                finally:
                    await close_stream(responses)
            if failure.error is not None:  # the endpoint caught it and ended
                raise failure.error
            if trailers is None:  # no response at all
                ctx, trailers = await self._start_reply(ctx, context)
            if self._kind == "stream_unary" and reply is _NO_REPLY:
                raise Internal("the endpoint gave a client-streaming call no response")
            context.set_trailing_metadata(trailers)
            return None if reply is _NO_REPLY else reply
        except asyncio.CancelledError as cancelled:
            code = Code.DEADLINE_EXCEEDED if ctx.expired else Code.CANCELLED
            if self._error_handler is not None:  # a cancelled stream is logged and counted too
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

    async def _requests(
        self, ctx: Context, incoming: AsyncIterator[Any], failure: _Failure
    ) -> AsyncIterator[Req]:
        """The decoded request messages of a client- or bidi-streaming call."""
        number = 0
        async for message in incoming:
            number += 1
            request = self._decoded(ctx, message, number, failure)
            yield request
        # grpc.aio ends the requests of a call its client cancelled as if the client had
        # finished sending; its cancellation of this task usually follows within a turn of
        # the event loop (measured: 138 of 150), so one turn lets most land before an
        # endpoint that stops at the end of its requests makes the stream look OK.
        await asyncio.sleep(0)

    def _decoded(self, ctx: Context, message: Any, number: int, failure: _Failure) -> Req:
        """Request message ``number`` (0: the only one) parsed and decoded; remembers a failure."""
        which = "the request message" if number == 0 else f"request message {number}"
        try:
            if self._parse is not None:
                try:
                    message = self._parse(message)
                except Exception as exc:
                    suffix = "" if number == 0 else f" (message {number})"
                    raise InvalidArgument(self._invalid_message + suffix) from exc
            try:
                return self._decode(ctx, message)
            except KitError:
                raise
            except Exception as exc:
                raise InvalidArgument(f"invalid request: could not decode {which}") from exc
        except Exception as exc:
            failure.error = exc
            raise

    async def _start_reply(
        self, ctx: Context, context: grpc.aio.ServicerContext[Any, Any]
    ) -> tuple[Context, OutgoingMetadata]:
        """Run the after funcs, send the initial metadata; return the Context and the trailers."""
        request_id = ctx[REQUEST_ID]
        if not self._after:
            return ctx, ((_REQUEST_ID_METADATA, request_id),)
        initial: dict[str, str | bytes] = {}
        trailing: dict[str, str | bytes] = {_REQUEST_ID_METADATA: request_id}
        for after in self._after:
            ctx = after(ctx, initial, trailing)
        if initial:
            await context.send_initial_metadata(metadata_to_pairs(initial))
        return ctx, metadata_to_pairs(trailing)

    def _encoded_error(self, ctx: Context, exc: Exception) -> KitError:
        """What ``error_encoder`` makes of ``exc``; INTERNAL if it fails or says OK."""
        try:
            err = self._error_encoder(ctx, exc)
        except Exception:  # a broken encoder must not leak its text to the client
            return Internal("internal error")
        return Internal("internal error") if err.code is Code.OK else err


class StreamClient(Generic[Req, Resp, PbReq, PbResp]):
    """A StreamEndpoint that calls the streaming method ``/{service}/{method}`` over ``channel``.

    The arguments are the unary :class:`~kitpy.transport.grpc.Client`'s, plus
    ``kind``: ``encode_request(ctx, request)`` builds each request message,
    ``decode_response(ctx, message)`` turns each reply into a response,
    ``reply_type`` is the reply message class (its ``FromString`` is used) or
    any ``bytes -> message`` deserializer, ``request_serializer`` defaults to
    the message's ``SerializeToString``; ``before``, ``after``, ``finalizer``
    and ``error_decoder`` as the Client's.

    Calling it ``(ctx, requests)`` gives the responses as an async iterator;
    the call opens when it is first read.  An expired Context raises
    ``DeadlineExceeded`` without calling; otherwise the remaining time is the
    call's timeout, covering the whole stream.  The ``before`` funcs fill the
    outgoing metadata.  A ``unary_stream`` call sends the first request of
    ``requests`` (none is INVALID_ARGUMENT) and closes the iterator; the other
    kinds send every request from a task of their own, which stops when the
    call ends (a failing request iterator or encoder cancels the call and its
    error is raised to the reader).  A non-OK status raises the ``KitError``
    subclass the server raised, with its message, after the responses that
    came before it; a reply over the channel's ``grpc.max_receive_message_length``
    is ``Unavailable`` naming the limit, as for the Client.  The ``after``
    funcs run once the stream has ended well, with its initial and trailing
    metadata; the ``finalizer`` funcs run last with the error or None.

    Closing the response iterator before its end (``aclose``,
    :func:`~kitpy.endpoint.stream.close_stream`, ``contextlib.aclosing``) or
    cancelling the reading task cancels the call: the server's handler is
    cancelled (its finalizers see CANCELLED), and the finalizers here get a
    :class:`~kitpy.errors.Cancelled`.  A ``break`` out of ``async for`` leaves
    the iterator to the garbage collector, which closes it later: use
    ``aclosing``.

    Example::

        countdown = StreamClient(channel, "test.v1.Timer", "Countdown",
                                 lambda c, n: Int64Value(value=n), lambda c, m: m.value,
                                 Int64Value, kind="unary_stream")
        assert await collect(countdown(ctx, messages(3))) == [3, 2, 1]
    """

    __slots__ = (
        "_after",
        "_before",
        "_decode",
        "_decode_error",
        "_encode",
        "_finalizer",
        "_open",
        "kind",
        "path",
    )

    def __init__(
        self,
        channel: grpc.aio.Channel,
        service: str,
        method: str,
        encode_request: Callable[[Context, Req], PbReq],
        decode_response: Callable[[Context, PbResp], Resp],
        reply_type: type[PbResp] | Callable[[bytes], PbResp],
        *,
        kind: StreamKind,
        before: Sequence[ClientBefore] = (),
        after: Sequence[ClientAfter] = (),
        finalizer: Sequence[ClientFinalizer] = (),
        error_decoder: ErrorDecoder = error_from_rpc_error,
        request_serializer: Callable[[PbReq], bytes] = _serialize,
    ) -> None:
        self.kind: StreamKind = _checked(kind)
        """The kind of method called."""
        self.path = f"/{service}/{method}"
        """The full method name, ``"/package.Service/Method"``."""
        deserializer = cast(
            "Callable[[bytes], PbResp]", getattr(reply_type, "FromString", reply_type)
        )
        openers: dict[str, Callable[..., Any]] = {
            "unary_stream": channel.unary_stream,
            "stream_unary": channel.stream_unary,
            "stream_stream": channel.stream_stream,
        }
        self._open: Callable[..., Any] = openers[kind](
            self.path, request_serializer=request_serializer, response_deserializer=deserializer
        )
        self._encode = encode_request
        self._decode = decode_response
        self._before = tuple(before)
        self._after = tuple(after)
        self._finalizer = tuple(finalizer)
        self._decode_error = error_decoder

    async def __call__(
        self, ctx: Context, requests: AsyncIterator[Req]
    ) -> AsyncGenerator[Resp, None]:
        """Call the method with ``requests``; yield the decoded responses (``aclose`` cancels)."""
        error: BaseException | None = None
        call: Any = None  # grpc.aio's call, once opened
        sender: asyncio.Task[None] | None = None
        failure = _Failure()  # what stopped the sender, if not the call's end
        first = _FirstStatus()
        try:
            timeout = ctx.time_remaining()
            if timeout is not None:
                if timeout <= 0.0:
                    raise DeadlineExceeded(f"deadline exceeded before calling {self.path}")
                timeout = min(timeout, MAX_TIMEOUT)  # grpc fails a far deadline at once
            metadata = None
            if self._before:
                outgoing: dict[str, str | bytes] = {}
                for before in self._before:
                    ctx = before(ctx, outgoing)
                if outgoing:
                    metadata = metadata_to_pairs(outgoing)
            if self.kind == "unary_stream":
                try:
                    request = await anext(requests)
                except StopAsyncIteration:
                    raise InvalidArgument(
                        f"{self.path} takes one request message; the request stream gave none"
                    ) from None
                finally:
                    await close_stream(requests)
                call = self._open(self._encode(ctx, request), timeout=timeout, metadata=metadata)
            else:
                call = self._open(timeout=timeout, metadata=metadata)
                call.add_done_callback(first.capture)  # before any write can fail
                sender = asyncio.create_task(self._send(ctx, call, requests, failure))
            if self.kind == "stream_unary":
                yield self._decode(ctx, await self._receive(call, failure, first))
            else:
                while (reply := await self._receive(call, failure, first)) is not grpc.aio.EOF:
                    yield self._decode(ctx, reply)
            if self._after:
                initial = metadata_from_pairs(await call.initial_metadata())
                trailing = metadata_from_pairs(await call.trailing_metadata())
                for after in self._after:
                    ctx = after(ctx, initial, trailing)
        except GeneratorExit:  # the reader closed the stream before its end
            error = Cancelled(f"stream from {self.path} closed by its reader")
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            if call is not None and not call.done():
                call.cancel()  # the server's handler is cancelled too
            if sender is not None and not sender.done():
                sender.cancel()
                await asyncio.wait((sender,))  # it keeps its own errors
            for finalizer in self._finalizer:
                finalizer(ctx, error)

    async def _receive(self, call: Any, failure: _Failure, first: _FirstStatus) -> Any:
        """The next reply (the one reply of a client-streaming call), or EOF; errors mapped."""
        try:
            if self.kind == "stream_unary":
                return await call
            return await call.read()
        except grpc.aio.AioRpcError as seen:
            exc = first.error(seen)
            oversize = oversize_reply(exc)
            if oversize is not None:  # our own limit, not the upstream's answer
                raise oversize from exc
            raise self._decode_error(exc) from exc
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # our reader was cancelled: let the cancellation through
            if failure.error is not None:  # our sender cancelled the call: say why
                raise failure.error from None
            # The call was cancelled under us (its channel was closed): the
            # server is gone for this caller, which a retry can route around.
            raise Unavailable(f"call to {self.path} cancelled: channel closed") from None

    async def _send(
        self, ctx: Context, call: Any, requests: AsyncIterator[Req], failure: _Failure
    ) -> None:
        """Send every request, then half-close; on a failure of our own, cancel the call."""
        try:
            async for request in requests:
                await call.write(self._encode(ctx, request))
            await call.done_writing()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass  # the call has ended: the reader reports how
        except Exception as exc:  # the request iterator or the encoder failed
            failure.error = exc
            call.cancel()
        finally:
            await close_stream(requests)
