"""Serve a server-streaming endpoint as server-sent events (``text/event-stream``) on aiohttp.

:class:`SseServer` is an aiohttp handler, built and configured as the HTTP
:class:`~kitpy.transport.http.Server` is (the same options, Context keys and
error responses), for a :class:`~kitpy.endpoint.stream.StreamEndpoint` that
reads one request and yields responses; ``encode_event`` turns each response
into an event.

Per request: the Context as the Server makes it (plus :data:`LAST_EVENT_ID`),
``admission``, the ``before`` funcs, ``authenticate`` (before the body is
read), ``decode_request``; then the endpoint runs and the stream starts with
its first event -- or with the first heartbeat, if the endpoint is silent
that long.  Until then nothing is sent, so an error up to there (the
endpoint's too: a stream it refuses) is the normal JSON error response with
its status.  The stream starts with ``200``, the ``after`` funcs' headers,
``Content-Type: text/event-stream``, ``Cache-Control: no-cache``,
``X-Accel-Buffering: no`` (nginx: do not buffer) and ``X-Request-Id``.  The
admission slot is given back when the endpoint starts.  Once started:

* an error ends the stream with an event named ``error`` whose data is the
  JSON error body (``{"error": {"code": ..., "message": ...}}``, an unexpected
  exception's text never in it); the ``error_handler`` sees the real error
  and the ``finalizer`` the status its code maps to (200 for a stream that
  ended by itself, 499 for a client that went away);
* ``: ping`` is sent after ``heartbeat`` seconds without an event, so proxies
  keep the connection and a client that is gone is noticed;
* a client that goes away (a write fails) or stops taking data for
  ``write_timeout`` seconds is dropped: the endpoint's iterator is closed (its
  ``finally`` blocks run), the ``finalizer`` gets 499 (CANCELLED), nothing is
  logged;
* the deadline (``X-Timeout-Ms``, or the ``root`` Context's) covers the whole
  stream: past it, the stream ends with a DEADLINE_EXCEEDED error event;
* the endpoint runs at the pace the client reads: each event is written
  with aiohttp's flow control (``await response.write``), and the endpoint
  hands over one event at a time, so a client that stops reading stops the
  endpoint once the socket buffers are full;
* served by :func:`~kitpy.transport.http.start_app`, a stream ends with an
  UNAVAILABLE error event when the app stops (``RunningApp.stop``), so the
  client reconnects elsewhere instead of holding the stop for the grace period
  (the ``finalizer`` gets 503; the ``error_handler`` is not called: a planned end).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import os
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final, Generic, TypeVar

import msgspec
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
from kitpy.endpoint import endpoint_name
from kitpy.endpoint.stream import StreamEndpoint, close_stream, messages
from kitpy.errors import DeadlineExceeded, Internal, InvalidArgument, Unavailable, to_kit_error
from kitpy.ratelimit.concurrency import Admission
from kitpy.transport.http.codec import body_read_error
from kitpy.transport.http.errors import default_error_encoder, error_body, response_status
from kitpy.transport.http.keys import (
    REQUEST,
    REQUEST_ID_HEADER,
    ROUTE,
    TIMEOUT_HEADER,
    incoming_request_id,
    parse_timeout,
)
from kitpy.transport.http.sse import (
    ERROR_EVENT,
    LAST_EVENT_ID_HEADER,
    EncodeEvent,
    Event,
    encode_data,
)
from kitpy.transport.http.types import (
    DecodeRequest,
    ErrorEncoder,
    ErrorHandler,
    ServerAfter,
    ServerBefore,
    ServerFinalizer,
)

__all__ = [
    "DEFAULT_HEARTBEAT",
    "DEFAULT_WRITE_TIMEOUT",
    "LAST_EVENT_ID",
    "SseServer",
    "encode_json_event",
]

Req = TypeVar("Req")
Resp = TypeVar("Resp")

DEFAULT_HEARTBEAT = 15.0
"""Seconds of silence after which an :class:`SseServer` sends a ``: ping`` comment."""

DEFAULT_WRITE_TIMEOUT = 60.0
"""Seconds an :class:`SseServer` waits for a client to take data before dropping it."""

_LAST_EVENT_ID_KEY = istr(LAST_EVENT_ID_HEADER)
_REQUEST_ID_KEY = istr(REQUEST_ID_HEADER)
_TIMEOUT_KEY = istr(TIMEOUT_HEADER)
_CANCELLED_STATUS = 499
_PING_FRAME = b": ping\n\n"
_ERROR_HEAD = f"event: {ERROR_EVENT}\n".encode()
_STREAM_HEADERS: Final = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


def _last_event_id(ctx: Context) -> str | None:
    request = ctx.get(REQUEST)
    return None if request is None else (request.headers.get(_LAST_EVENT_ID_KEY) or None)


LAST_EVENT_ID: Key[str] = Key("http.last_event_id", derive=_last_event_id)
"""The ``Last-Event-ID`` a reconnecting client sent (absent when none, or empty).

An endpoint resumes after it::

    async def ticks(ctx: Context, request: None) -> AsyncIterator[Tick]:
        start = int(ctx.get(LAST_EVENT_ID, "0")) + 1
        ...
"""


def _operation(ctx: Context) -> str:
    """The OPERATION source: ``"<METHOD> <route>"``, or the path when no route matched."""
    request = ctx[REQUEST]
    route: str | None = ctx.get(ROUTE)
    return f"{request.method} {route or request.path}"


_encode = msgspec.json.Encoder().encode


def encode_json_event(ctx: Context, response: Any) -> bytes | Event:
    """The default event encoder: ``response`` as JSON data (an :class:`Event` passes as it is).

    So an endpoint may yield an ``Event`` to give one an id or a name; to give
    every event an id from the response, write an encoder::

        def encode_tick(ctx: Context, tick: Tick) -> Event:
            return Event(msgspec.json.encode(tick).decode(), id=str(tick.n), event="tick")
    """
    if isinstance(response, Event):
        return response
    return _encode(response)


class _ClientGone(Exception):
    """A write failed, or the client took nothing for ``write_timeout`` seconds."""


class _ServerClosing(Unavailable):
    """The app stops: the stream ends with UNAVAILABLE, and no error is reported for it."""


_END = object()  # the endpoint's stream ended
_PING = object()  # heartbeat seconds of silence
_CLOSING = object()  # the server is shutting down


class _Pump:
    """The endpoint's response stream, run in a task of its own, handed over one at a time.

    One task, so the endpoint's body runs in one task from start to end; the
    handler waits for the next response with a heartbeat timeout and cannot
    cut the endpoint short by doing so.  At most one response waits.
    """

    __slots__ = ("_queue", "_room", "task")

    def __init__(self, stream: AsyncIterator[Any]) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._room = asyncio.Semaphore(1)
        self.task = asyncio.create_task(self._run(stream))
        self.task.add_done_callback(lambda _: self._queue.put_nowait(_END))

    async def _run(self, stream: AsyncIterator[Any]) -> None:
        try:
            async for response in stream:
                await self._room.acquire()
                self._queue.put_nowait(response)
        finally:
            await close_stream(stream)

    def closing(self, _: object = None) -> None:
        self._queue.put_nowait(_CLOSING)

    async def next(self, heartbeat: float | None) -> Any:
        """The next response, or _PING after ``heartbeat`` s, _END, _CLOSING; or the error."""
        wait = asyncio.timeout(heartbeat)
        try:
            async with wait:
                item = await self._queue.get()
        except TimeoutError:
            if wait.expired():
                return _PING
            raise
        if item is _END:
            self.task.result()  # the endpoint's error, if it failed
        elif item is not _CLOSING:
            self._room.release()
        return item

    async def stop(self) -> None:
        """Cancel the endpoint if it still runs (its ``finally`` blocks run) and wait for it."""
        if not self.task.done():
            self.task.cancel()
        await asyncio.wait((self.task,))
        if not self.task.cancelled():
            self.task.exception()  # retrieved: an error while cancelling is not reported


class _NoLag:
    value = 0.0


_NO_LAG: Any = _NoLag()


class SseServer(Generic[Req, Resp]):
    """An aiohttp handler that serves a server-streaming endpoint as server-sent events.

    Example::

        @server_stream
        async def ticks(ctx: Context, request: TickRequest) -> AsyncIterator[Tick]:
            for n in range(request.count):
                yield Tick(n)
                await asyncio.sleep(1.0)

        add_routes(app, {"GET /ticks": SseServer(ticks, decode_ticks, encode_tick)})

    ``decode_request(ctx, request)`` makes the endpoint's one request (from
    the query string, or a JSON body with
    :func:`~kitpy.transport.http.decode_json`); the endpoint gets it through an
    iterator of one.  ``encode_event(ctx, response)`` gives the event: its data
    (``str``, or UTF-8 ``bytes``) or a whole
    :class:`~kitpy.transport.http.sse.Event` with an id, name or retry; the
    default, :func:`encode_json_event`, sends JSON data and passes an ``Event``
    the endpoint yields as it is.  The name ``error`` is kept for the stream's
    error: an event named so is an encoding failure (INTERNAL).

    Options: ``heartbeat`` (seconds of silence before a ``: ping``; default
    :data:`DEFAULT_HEARTBEAT`, 15; None: never, and a client gone is noticed
    only at the next event), ``write_timeout`` (seconds a
    write may wait for a client that takes nothing before it is dropped;
    default :data:`DEFAULT_WRITE_TIMEOUT`, 60; None: wait for ever), and the
    HTTP Server's, with the same meaning -- ``root``, ``enforce_deadline``
    (the deadline covers the whole stream), ``before``, ``after`` (run as the
    stream starts), ``error_encoder`` (errors before the stream starts; later
    ones are error events), ``error_handler``, ``finalizer`` (once, when the
    stream ends: the status its outcome maps to and the bytes of events sent),
    ``authenticate`` and ``admission`` (held while the stream opens; to cap
    the streams open at once, wrap the endpoint in
    ``lift(concurrency_limit(...))``).  A ``HEAD`` request gets the headers and
    no stream.
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
        "_heartbeat",
        "_id_prefix",
        "_ids",
        "_is_coroutine",
        "_is_coroutine_marker",
        "_lag",
        "_named",
        "_root",
        "_write_timeout",
    )

    def __init__(
        self,
        endpoint: StreamEndpoint[Req, Resp],
        decode_request: DecodeRequest[Req],
        encode_event: EncodeEvent[Resp] = encode_json_event,
        *,
        heartbeat: float | None = DEFAULT_HEARTBEAT,
        write_timeout: float | None = DEFAULT_WRITE_TIMEOUT,
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
        if heartbeat is not None and not heartbeat > 0:
            raise ValueError(f"heartbeat must be > 0 seconds (or None), got {heartbeat}")
        if write_timeout is not None and not write_timeout > 0:
            raise ValueError(f"write_timeout must be > 0 seconds (or None), got {write_timeout}")
        self._endpoint = endpoint
        name = endpoint_name(endpoint)
        self._named: dict[Key[Any], Any] = {} if name is None else {ENDPOINT_NAME: name}
        self._decode = decode_request
        self._encode = encode_event
        self._heartbeat = heartbeat
        self._write_timeout = write_timeout
        self._root = Context() if root is None else root
        self._enforce_deadline = enforce_deadline
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
        # aiohttp takes only coroutine functions as handlers: mark this callable as one
        if sys.version_info >= (3, 12):
            inspect.markcoroutinefunction(self)
        else:  # 3.11 has no public way: set the marker asyncio.iscoroutinefunction reads
            self._is_coroutine = getattr(asyncio.coroutines, "_is_coroutine", None)

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        """Serve one stream (aiohttp calls this)."""
        request_id = incoming_request_id(request.headers) or f"{self._id_prefix}{next(self._ids)}"
        values: dict[Key[Any], Any] = {
            REQUEST: request,
            REQUEST_ID: request_id,
            OPERATION_SOURCE: _operation,
        }
        header = request.headers.get(_TIMEOUT_KEY)
        bad_header: InvalidArgument | None = None
        try:
            budget = None if header is None else parse_timeout(header) - self._lag.value
        except InvalidArgument as exc:
            budget, bad_header = None, exc
        ctx = self._root.with_values(values, timeout=budget)
        admitted: Admission | None = None  # while this request holds an admission slot
        pump: _Pump | None = None
        stopping: asyncio.Future[None] | None = None  # done when the app stops
        response: web.StreamResponse | None = None  # once the stream has started
        sent = 0  # bytes of events sent
        in_endpoint = False  # whether an error came out of the endpoint
        status = 200
        try:
            try:
                if bad_header is not None:
                    raise bad_header
                if self._admission is not None:
                    if not self._admission.try_acquire():
                        await self._admission.acquire(ctx)
                    admitted = self._admission
                for before in self._before:
                    ctx = before(ctx, request)
                remaining = ctx.time_remaining()
                if remaining is not None and remaining <= 0.0:
                    raise DeadlineExceeded("deadline exceeded before the request was handled")
                deadline = asyncio.timeout(remaining if self._enforce_deadline else None)
                try:
                    async with deadline:
                        if self._authenticate is not None:  # the caller first, then its body
                            ctx = await self._authenticate(ctx)
                        decoded = await self._decode(ctx, request)
                        if request.method == "HEAD":  # the headers, and no stream
                            ctx, response = await self._start(ctx, request)
                            await self._send(request, response, b"", eof=True)
                            return response
                        if admitted is not None:  # the stream is open: see "admission"
                            admitted.release()
                            admitted = None
                        pump = _Pump(self._endpoint(ctx, messages(decoded)))
                        closing = getattr(request.protocol, "closing", None)
                        if callable(closing):  # start_app's connections: the app stops
                            stopping = closing()
                            stopping.add_done_callback(pump.closing)
                        while True:
                            in_endpoint = True
                            item = await pump.next(self._heartbeat)
                            in_endpoint = False
                            if item is _END:
                                break
                            if item is _CLOSING:
                                raise _ServerClosing("the server is shutting down; reconnect")
                            frame = _PING_FRAME if item is _PING else self._frame(ctx, item)
                            if response is None:
                                ctx, response = await self._start(ctx, request)
                            await self._send(request, response, frame)
                            sent += len(frame)
                        if response is None:  # an empty stream
                            ctx, response = await self._start(ctx, request)
                        await self._send(request, response, b"", eof=True)
                except TimeoutError:
                    if not deadline.expired():
                        raise
                    in_endpoint = False
                    raise DeadlineExceeded("deadline exceeded") from None
            except (asyncio.CancelledError, _ClientGone):
                status = _CANCELLED_STATUS
                raise
            except Exception as exc:
                error = body_read_error(request, exc)
                ctx = ctx.with_values({ENDPOINT_ERROR: in_endpoint, **self._named})
                if self._error_handler is not None and not isinstance(error, _ServerClosing):
                    self._error_handler(ctx, error)
                if response is None:
                    result = self._error_encoder(ctx, error)
                    result.headers[_REQUEST_ID_KEY] = ctx[REQUEST_ID]
                    if getattr(request.protocol, "draining", False):
                        result.force_close()
                    body = getattr(result, "body", None)
                    status = result.status
                    sent = len(body) if isinstance(body, bytes | bytearray) else 0
                    return result
                status = response_status(to_kit_error(error))
                frame = _ERROR_HEAD + encode_data(error_body(to_kit_error(error)))
                try:
                    await self._send(request, response, frame, eof=True)
                    sent += len(frame)
                except _ClientGone:
                    status = _CANCELLED_STATUS
        except _ClientGone:
            pass  # the finalizer says 499; aiohttp ignores the lost connection
        finally:
            if stopping is not None and pump is not None:
                stopping.remove_done_callback(pump.closing)
            if pump is not None:
                await pump.stop()
            if admitted is not None:
                admitted.release()
            for finalize in self._finalizer:
                finalize(ctx, status, sent)
        if response is None:  # the client left as the stream started: aiohttp ignores this
            return web.Response(status=_CANCELLED_STATUS)
        return response

    def _frame(self, ctx: Context, response: Any) -> bytes:
        """The event for ``response``; INTERNAL if it cannot be encoded."""
        try:
            encoded = self._encode(ctx, response)
            if isinstance(encoded, Event):
                if encoded.event == ERROR_EVENT:
                    raise ValueError("the event name 'error' is kept for the stream's error")
                return encoded.encode()
            return encode_data(encoded)
        except Exception as exc:
            raise Internal("could not encode the event") from exc

    async def _start(
        self, ctx: Context, request: web.Request
    ) -> tuple[Context, web.StreamResponse]:
        """Send the stream's headers: ``after`` funcs, SSE headers, request id."""
        headers: CIMultiDict[str] = CIMultiDict()
        for after in self._after:
            ctx = after(ctx, headers)
        headers.update(_STREAM_HEADERS)
        headers[_REQUEST_ID_KEY] = ctx[REQUEST_ID]
        response = web.StreamResponse(status=200, headers=headers)
        if getattr(request.protocol, "draining", False):  # shutting down: reconnect elsewhere
            response.force_close()
        try:
            await response.prepare(request)
        except ConnectionError:
            raise _ClientGone from None
        return ctx, response

    async def _send(
        self, request: web.Request, response: web.StreamResponse, frame: bytes, *, eof: bool = False
    ) -> None:
        """Write ``frame`` (and end the stream, with ``eof``) at the client's pace, bounded."""
        stalled = asyncio.timeout(self._write_timeout)
        try:
            async with stalled:
                if eof:
                    await response.write_eof(frame)
                else:
                    await response.write(frame)
        except ConnectionError:
            raise _ClientGone from None
        except TimeoutError:
            if not stalled.expired():
                raise
            transport = request.transport
            if transport is not None:
                transport.abort()  # the buffered events are dropped, and the connection
            raise _ClientGone from None
