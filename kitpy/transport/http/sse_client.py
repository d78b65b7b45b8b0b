"""Read server-sent events: :func:`sse_events` for any SSE URL, :class:`SseClient` as an endpoint.

Both send ``Accept: text/event-stream``, raise the ``KitError`` a non-2xx
answer stands for (:func:`~kitpy.transport.http.decode_error`, as the HTTP
Client does), parse the stream with
:class:`~kitpy.transport.http.sse.SseParser` (at most ``max_event_size`` per
event, default 1 MiB) and turn a kitpy server's ``error`` event into the
``KitError`` it carries (:func:`~kitpy.transport.http.sse.stream_error`).

Time: the stream's deadline (``timeout=``, or the Context's for the
SseClient) is sent in ``X-Timeout-Ms`` and bounds the whole stream
(``DeadlineExceeded`` past it); a stream with no deadline is not cut by the
session's total timeout.  ``read_timeout`` (default
:data:`DEFAULT_READ_TIMEOUT`, 60 s: four of a kitpy server's heartbeats) bounds
the silence between two reads: a stream that sends nothing -- no event, no
heartbeat -- for that long is dropped as ``Unavailable``.  A connection that
fails or is cut mid-stream is ``Unavailable`` too.

Close what you stop reading early -- ``async with contextlib.aclosing(...)``,
or :func:`~kitpy.endpoint.stream.close_stream` -- and the connection closes at
once (the server sees the client go); a stream read to its end leaves its
connection to the session's pool.
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

import aiohttp
import msgspec
from multidict import CIMultiDict
from yarl import URL

from kitpy.context import REQUEST_ID, Context
from kitpy.errors import (
    Cancelled,
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    KitError,
    Unavailable,
    Unknown,
)
from kitpy.transport.http.codec import json_decoder, read_body
from kitpy.transport.http.errors import MAX_ERROR_BODY_SIZE, decode_error
from kitpy.transport.http.keys import REQUEST_ID_HEADER, TIMEOUT_HEADER, format_timeout
from kitpy.transport.http.sse import (
    DEFAULT_MAX_EVENT_SIZE,
    ERROR_EVENT,
    LAST_EVENT_ID_HEADER,
    DecodeEvent,
    Event,
    SseParser,
    stream_error,
)
from kitpy.transport.http.types import (
    ClientAfter,
    ClientBefore,
    ClientFinalizer,
    EncodeRequest,
    ErrorDecoder,
    OutgoingRequest,
)

__all__ = ["DEFAULT_READ_TIMEOUT", "SseClient", "decode_json_event", "sse_events"]

Req = TypeVar("Req")
Resp = TypeVar("Resp")
T = TypeVar("T")

DEFAULT_READ_TIMEOUT = 60.0
"""Seconds of silence (no event, no heartbeat) after which an SSE client drops the stream."""

_EVENT_STREAM = "text/event-stream"
_ROOT = Context()
_encode = msgspec.json.Encoder().encode


async def sse_events(
    session: aiohttp.ClientSession,
    url: str | URL,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    json: Any = None,
    last_event_id: str | None = None,
    timeout: float | None = None,  # noqa: ASYNC109 -- asyncio.timeout cannot span yields
    read_timeout: float | None = DEFAULT_READ_TIMEOUT,
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    raise_errors: bool = True,
) -> AsyncGenerator[Event, None]:
    """The events of the stream at ``url``, as they arrive.

    ``json`` (any value msgspec encodes) is sent as the JSON body;
    ``last_event_id`` as ``Last-Event-ID``, to resume after that event;
    ``timeout`` (seconds) bounds the whole stream and is sent as
    ``X-Timeout-Ms``.  An ``error`` event raises the ``KitError`` it carries
    (``raise_errors=False``: it is yielded like any other).

    Example::

        async with contextlib.aclosing(sse_events(session, f"{base}/ticks")) as events:
            async for event in events:
                print(event.id, event.data)
    """
    out: CIMultiDict[str] = CIMultiDict(headers or {})
    out.setdefault("Accept", _EVENT_STREAM)
    body = None
    if json is not None:
        body = _encode(json)
        out["Content-Type"] = "application/json"
    if last_event_id:
        out[LAST_EVENT_ID_HEADER] = last_event_id
    if timeout is not None:
        if timeout <= 0:
            raise DeadlineExceeded("deadline exceeded before the request was sent")
        out[TIMEOUT_HEADER] = format_timeout(timeout)
    response: aiohttp.ClientResponse | None = None
    try:
        response = await _open(session, method, URL(url), out, body, timeout, read_timeout)
        await _check(response, decode_error)
        parser = SseParser(max_event_size=max_event_size)
        async for chunk in response.content.iter_any():
            for event in parser.feed(chunk):
                if raise_errors and event.event == ERROR_EVENT:
                    raise stream_error(event.data)
                yield event
    except KitError:
        raise
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise _failure(exc, timeout, read_timeout) from exc
    finally:
        if response is not None:
            _done(response)


class SseClient(Generic[Req, Resp]):
    """A :class:`~kitpy.endpoint.stream.StreamEndpoint` that reads an SSE stream over HTTP.

    Built like the HTTP :class:`~kitpy.transport.http.Client`: ``encode_request``
    fills the outgoing request from the call's one request (the first the
    ``requests`` iterator gives), ``decode_event`` turns each event into a
    response, and ``before`` / ``after`` / ``finalizer`` / ``error_decoder``
    are the Client's hooks.  The Context's deadline is sent in
    ``X-Timeout-Ms`` and bounds the stream; its request id, if any, in
    ``X-Request-Id``.  A non-2xx answer raises the
    ``KitError`` the server sent; an ``error`` event raises the same
    ``KitError`` subclass the server's endpoint raised, with its message.

    Example::

        ticks = SseClient(session, "GET", f"{base}/ticks", encode_ticks, decode_json_event(Tick))
        async with contextlib.aclosing(ticks(ctx, messages(TickRequest(count=3)))) as stream:
            async for tick in stream:
                ...

    The session is yours: the SseClient never creates or closes one.  To
    resume, have ``encode_request`` (or a ``before`` func) set ``Last-Event-ID``.
    The ``finalizer`` gets ``Cancelled`` when the stream is closed before its end.
    """

    __slots__ = (
        "_after",
        "_before",
        "_decode",
        "_decode_error",
        "_encode",
        "_finalizer",
        "_max_event_size",
        "_method",
        "_read_timeout",
        "_session",
        "_url",
    )

    def __init__(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str | URL,
        encode_request: EncodeRequest[Req],
        decode_event: DecodeEvent[Resp],
        *,
        before: Sequence[ClientBefore] = (),
        after: Sequence[ClientAfter] = (),
        finalizer: Sequence[ClientFinalizer] = (),
        error_decoder: ErrorDecoder = decode_error,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        read_timeout: float | None = DEFAULT_READ_TIMEOUT,
    ) -> None:
        if max_event_size < 1:
            raise ValueError(f"max_event_size must be >= 1, got {max_event_size}")
        self._session = session
        self._method = method.upper()
        self._url = URL(url)
        self._encode = encode_request
        self._decode = decode_event
        self._before = tuple(before)
        self._after = tuple(after)
        self._finalizer = tuple(finalizer)
        self._decode_error = error_decoder
        self._max_event_size = max_event_size
        self._read_timeout = read_timeout

    def __call__(self, ctx: Context, requests: AsyncIterator[Req], /) -> AsyncIterator[Resp]:
        """Open the stream for the first of ``requests``; yield the decoded events."""
        return self._stream(ctx, requests)

    async def _stream(self, ctx: Context, requests: AsyncIterator[Req]) -> AsyncIterator[Resp]:
        error: BaseException | None = None
        response: aiohttp.ClientResponse | None = None
        remaining: float | None = None
        try:
            try:
                request = await anext(requests)
            except StopAsyncIteration:
                raise InvalidArgument("the call sent no request message") from None
            out = OutgoingRequest(self._method, self._url, CIMultiDict({"Accept": _EVENT_STREAM}))
            request_id = ctx.get(REQUEST_ID)
            if request_id:  # the call this stream is part of
                out.headers[REQUEST_ID_HEADER] = request_id
            for before in self._before:
                ctx = before(ctx, out.headers)
            self._encode(ctx, out, request)
            remaining = ctx.time_remaining()
            if remaining is not None:
                if remaining <= 0:
                    raise DeadlineExceeded("deadline exceeded before the request was sent")
                out.headers[TIMEOUT_HEADER] = format_timeout(remaining)
            try:
                response = await _open(
                    self._session,
                    out.method,
                    out.url,
                    out.headers,
                    out.body,
                    remaining,
                    self._read_timeout,
                )
                for after in self._after:
                    ctx = after(ctx, response)
                await _check(response, self._decode_error)
                parser = SseParser(max_event_size=self._max_event_size)
                async for chunk in response.content.iter_any():
                    for event in parser.feed(chunk):
                        if event.event == ERROR_EVENT:
                            raise stream_error(event.data)
                        try:
                            decoded = self._decode(ctx, event)
                        except KitError:
                            raise
                        except Exception as exc:
                            raise Internal("the upstream's event could not be decoded") from exc
                        yield decoded
            except KitError:
                raise
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise _failure(exc, remaining, self._read_timeout) from exc
        except GeneratorExit:
            error = Cancelled("the stream was closed before its end")
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            if response is not None:
                _done(response)
            for finalize in self._finalizer:
                finalize(ctx, error)


def decode_json_event(tp: type[T], *, ignore_unknown_fields: bool = True) -> DecodeEvent[T]:
    """Build an event decoder that reads each event's data as JSON into ``tp``.

    Unknown fields are ignored by default (a server may add fields); data that
    does not fit raises ``Internal("the upstream's event could not be
    decoded")``, the decoder's words only in its ``__cause__``.  To read the
    event's id or name too, write a decoder of ``(ctx, event)``.

    Example::

        SseClient(session, "GET", url, encode_ticks, decode_json_event(Tick))
    """
    decode = json_decoder(tp, ignore_unknown_fields=ignore_unknown_fields)

    def decode_event(ctx: Context, event: Event) -> T:
        try:
            return decode(event.data.encode())
        except (msgspec.MsgspecError, RecursionError) as exc:
            raise Internal("the upstream's event could not be decoded") from exc

    return decode_event


async def _open(
    session: aiohttp.ClientSession,
    method: str,
    url: URL,
    headers: CIMultiDict[str],
    body: bytes | None,
    remaining: float | None,
    read_timeout: float | None,
) -> aiohttp.ClientResponse:
    """Send the request; the stream's timeouts replace the session's total."""
    session_timeout = session.timeout
    total = remaining if remaining is not None and math.isfinite(remaining) else None
    timeout = aiohttp.ClientTimeout(
        total=total,
        connect=session_timeout.connect,
        sock_connect=session_timeout.sock_connect,
        sock_read=read_timeout,
    )
    return await session.request(
        method,
        url,
        data=body,
        headers=headers,
        allow_redirects=False,  # an upstream does not get to send us elsewhere
        timeout=timeout,
    )


async def _check(response: aiohttp.ClientResponse, error_decoder: ErrorDecoder) -> None:
    """Raise the error a non-2xx answer stands for, or for a body that is not an event stream."""
    status = response.status
    if not 200 <= status < 300:
        try:
            body = await read_body(_ROOT, response, limit=MAX_ERROR_BODY_SIZE)
        except Unavailable:  # too long to be an error body: go by the status
            body = b""
        raise error_decoder(status, body, response.reason)
    if response.content_type != _EVENT_STREAM:
        raise Internal(
            f"upstream answered {status} with Content-Type "
            f"{response.content_type[:60]!r}, not {_EVENT_STREAM}"
        )


def _failure(exc: BaseException, remaining: float | None, read_timeout: float | None) -> KitError:
    """The kitpy error for a transport failure while opening or reading a stream."""
    if isinstance(exc, aiohttp.SocketTimeoutError):  # the read timeout, not the deadline
        return Unavailable(f"the upstream sent nothing for {read_timeout} s (read_timeout)")
    if isinstance(exc, TimeoutError):
        budget = "its deadline" if remaining is None else f"its deadline of {remaining:.3f}s"
        return DeadlineExceeded(f"the stream ran past {budget}")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return Unavailable("the stream was cut short")
    if isinstance(exc, aiohttp.ClientConnectionError):
        return Unavailable(f"upstream unavailable ({type(exc).__name__})")
    return Unknown(f"HTTP client error ({type(exc).__name__})")


def _done(response: aiohttp.ClientResponse) -> None:
    """Give a stream read to its end back to the pool; close one left early."""
    if response.content.at_eof():
        response.release()
    else:
        response.close()
