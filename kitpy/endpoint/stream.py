"""Streaming endpoints: one shape for server-, client- and bidi-streaming calls; their middleware.

A :class:`StreamEndpoint` is ``(ctx, requests) -> responses``: it takes an async
iterator of requests and returns an async iterator of responses (usually it is
an ``async def`` generator).  That one shape covers all three kinds; the two
one-sided kinds are written in their natural form and lifted:

* server streaming, ``async def tokens(ctx, request) -> AsyncIterator[Resp]``
  (one request, many responses): :func:`server_stream` makes it a StreamEndpoint
  that reads exactly one request;
* client streaming, ``async def total(ctx, requests) -> Resp`` (many requests,
  one response): :func:`client_stream`;
* bidi streaming is the shape itself.

A :data:`StreamMiddleware` wraps a StreamEndpoint, as a
:data:`~kitpy.endpoint.Middleware` wraps an Endpoint; :func:`stream_chain`
stacks them, first argument outermost, and keeps the endpoint's name
(:func:`named_stream` gives one).  :func:`lift` turns a unary middleware --
logging, metrics, a limiter, a breaker, a timeout -- into a stream middleware
that sees the *whole stream* as one call: it starts when the stream starts and
ends, with the stream's error if any, when the stream ends.

Testing a streaming endpoint needs no network: feed it :func:`messages` and
read it with :func:`collect`::

    @server_stream
    async def tokens(ctx: Context, text: str) -> AsyncIterator[str]:
        for word in text.split():
            yield word.upper()

    assert await collect(tokens(Context(), messages("go kit"))) == ["GO", "KIT"]

Nothing here imports a third-party package.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeAlias, TypeVar

from kitpy.context import Context
from kitpy.endpoint import Endpoint, GenericMiddleware, Middleware, endpoint_name, keep_name
from kitpy.errors import InvalidArgument

__all__ = [
    "StreamEndpoint",
    "StreamMiddleware",
    "collect",
    "client_stream",
    "close_stream",
    "lift",
    "messages",
    "named_stream",
    "server_stream",
    "stream_chain",
]

Req = TypeVar("Req")
Resp = TypeVar("Resp")
T = TypeVar("T")
Req_contra = TypeVar("Req_contra", contravariant=True)
Resp_co = TypeVar("Resp_co", covariant=True)

_NAME = "kitpy_name"  # the attribute kitpy.endpoint keeps a name in


class StreamEndpoint(Protocol[Req_contra, Resp_co]):
    """A streaming call: ``(ctx, requests) -> responses``, both async iterators.

    The transport gives ``requests`` (one message for a server-streaming call)
    and reads the responses as the client can take them; it stops reading (and
    closes the iterator, so the endpoint's ``finally`` blocks run) when the
    client goes away.
    """

    def __call__(
        self, ctx: Context, requests: AsyncIterator[Req_contra], /
    ) -> AsyncIterator[Resp_co]: ...


StreamMiddleware: TypeAlias = Callable[[StreamEndpoint[Any, Any]], StreamEndpoint[Any, Any]]
"""A function from stream endpoint to stream endpoint that adds behaviour around it."""


def server_stream(
    fn: Callable[[Context, Req], AsyncIterator[Resp]], /
) -> StreamEndpoint[Req, Resp]:
    """A StreamEndpoint from a server-streaming function ``(ctx, request) -> responses``.

    The result reads exactly one request (no request at all is
    INVALID_ARGUMENT) and yields what ``fn`` yields; it keeps ``fn``'s name.

    Example::

        @server_stream
        async def countdown(ctx: Context, n: int) -> AsyncIterator[int]:
            for i in range(n, 0, -1):
                yield i
    """

    async def endpoint(ctx: Context, requests: AsyncIterator[Req]) -> AsyncIterator[Resp]:
        try:
            request = await anext(requests)
        except StopAsyncIteration:
            raise InvalidArgument("the call sent no request message") from None
        responses = fn(ctx, request)
        try:
            async for response in responses:
                yield response
        finally:
            await close_stream(responses)

    return keep_name(endpoint, fn)


def client_stream(
    fn: Callable[[Context, AsyncIterator[Req]], Awaitable[Resp]], /
) -> StreamEndpoint[Req, Resp]:
    """A StreamEndpoint from a client-streaming function ``(ctx, requests) -> response``.

    The result yields ``fn``'s one response; it keeps ``fn``'s name.

    Example::

        @client_stream
        async def total(ctx: Context, numbers: AsyncIterator[int]) -> int:
            return sum([n async for n in numbers])
    """

    async def endpoint(ctx: Context, requests: AsyncIterator[Req]) -> AsyncIterator[Resp]:
        yield await fn(ctx, requests)

    return keep_name(endpoint, fn)


def named_stream(name: str) -> StreamMiddleware:
    """A stream middleware that gives a stream endpoint the operation name ``name``.

    As :func:`~kitpy.endpoint.named` does for unary endpoints: logs, metrics
    and spans name the stream by it.  The endpoint itself is not changed.
    """
    if not name:
        raise ValueError("an endpoint name must not be empty")

    def middleware(next: StreamEndpoint[Any, Any]) -> StreamEndpoint[Any, Any]:
        def forward(ctx: Context, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
            return next(ctx, requests)

        setattr(forward, _NAME, name)
        return forward

    return middleware


def stream_chain(outer: StreamMiddleware, /, *others: StreamMiddleware) -> StreamMiddleware:
    """Compose stream middlewares into one; the first argument is the outermost layer.

    As :func:`~kitpy.endpoint.chain`: a layer that drops the endpoint's name
    gets it back.
    """
    layers = (outer, *others)

    def middleware(next: StreamEndpoint[Any, Any]) -> StreamEndpoint[Any, Any]:
        for layer in reversed(layers):
            name = endpoint_name(next)
            next = layer(next)
            if name is not None and endpoint_name(next) is None:
                next = named_stream(name)(next)
        return next

    return middleware


def lift(middleware: GenericMiddleware | Middleware[Any, Any], /) -> StreamMiddleware:
    """A stream middleware that runs the unary ``middleware`` around each whole stream.

    The unary layer sees one call per stream: it begins before the endpoint
    reads its first request and returns when the endpoint's last response has
    been read -- or raises the stream's error -- so a concurrency limiter holds
    its slot for the stream, a rate limiter counts streams, a breaker records
    each stream's outcome, a timeout bounds the whole stream, and call logging
    and metrics time it.  A layer that refuses the call (a rate limit, an open
    breaker) refuses the stream before the endpoint runs.  The call's request
    is None and its result is ignored: lift layers that guard or observe a
    call, not ones that replace its result (a fallback).

    The layer runs in a task of its own, and each response is handed across
    with room for one waiting (a reader that stops reading stops the
    endpoint); that costs a task switch per message, so the per-message layers
    of a hot stream are better written as stream middleware.

    Example::

        guarded = stream_chain(lift(limiter.middleware), lift(call_logging(logger)))
    """

    def stream_middleware(next: StreamEndpoint[Any, Any]) -> StreamEndpoint[Any, Any]:
        def endpoint(ctx: Context, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
            return _lifted(middleware, next, ctx, requests)

        return keep_name(endpoint, next)

    return stream_middleware


_END = object()  # after the last response: the layer's call has finished


async def _lifted(
    middleware: GenericMiddleware | Middleware[Any, Any],
    next: StreamEndpoint[Any, Any],
    ctx: Context,
    requests: AsyncIterator[Any],
) -> AsyncIterator[Any]:
    """Run ``middleware(whole stream)`` in a task; yield the responses it hands over."""
    handed: asyncio.Queue[Any] = asyncio.Queue()  # a response, then _END when the call ends
    room = asyncio.Semaphore(1)  # at most one response waits for the reader

    async def whole(call_ctx: Context, _: object) -> None:
        responses = next(call_ctx, requests)
        try:
            async for response in responses:
                await room.acquire()
                handed.put_nowait(response)
        finally:
            await close_stream(responses)

    async def run(layer: Endpoint[Any, Any]) -> None:
        await layer(ctx, None)

    call = asyncio.create_task(run(middleware(keep_name(whole, next))))
    call.add_done_callback(lambda _: handed.put_nowait(_END))
    try:
        while (response := await handed.get()) is not _END:
            room.release()
            yield response
        call.result()  # the stream's error, as the layer passed it on
    finally:
        if not call.done():  # the reader stopped early (or was cancelled): stop the stream
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await call


async def messages(*items: T) -> AsyncIterator[T]:
    """An async iterator of ``items``: a request stream for a test, or for a client call.

    Example::

        assert await collect(total(Context(), messages(1, 2, 3))) == [6]
    """
    for item in items:
        yield item


async def collect(stream: AsyncIterable[T], /) -> list[T]:
    """Read a whole response stream into a list; a generator is closed even if reading fails."""
    try:
        return [item async for item in stream]
    finally:
        await close_stream(stream)


async def close_stream(stream: object, /) -> None:
    """Close ``stream`` if it can be closed (an async generator): its ``finally`` blocks run.

    What a transport does when its client goes away, and a test when it stops
    reading early.  Anything without ``aclose`` is left alone.
    """
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
