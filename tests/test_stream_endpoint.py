"""kitpy.endpoint.stream: the three streaming kinds, names, chains and lifted unary middleware."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from kitpy import Context, InvalidArgument, RateLimited, Unavailable
from kitpy.endpoint import Endpoint, Req, Resp, endpoint_name, keep_name
from kitpy.endpoint.stream import (
    StreamEndpoint,
    client_stream,
    close_stream,
    collect,
    lift,
    messages,
    named_stream,
    server_stream,
    stream_chain,
)
from kitpy.ratelimit import concurrency_limit


@server_stream
async def tokens(ctx: Context, text: str) -> AsyncIterator[str]:
    for word in text.split():
        yield word.upper()


@client_stream
async def total(ctx: Context, numbers: AsyncIterator[int]) -> int:
    return sum([n async for n in numbers])


async def echo(ctx: Context, requests: AsyncIterator[str]) -> AsyncIterator[str]:
    async for request in requests:
        yield request + "!"


async def test_the_three_kinds_share_one_shape() -> None:
    assert await collect(tokens(Context(), messages("go kit rocks"))) == ["GO", "KIT", "ROCKS"]
    assert await collect(total(Context(), messages(1, 2, 3))) == [6]
    assert await collect(echo(Context(), messages("a", "b"))) == ["a!", "b!"]
    kinds: list[StreamEndpoint[str, str]] = [tokens, echo]
    assert len(kinds) == 2


async def test_a_server_stream_without_its_request_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="no request"):
        await collect(tokens(Context(), messages()))


async def test_names_survive_stream_chains() -> None:
    def passthrough(next: StreamEndpoint[str, str]) -> StreamEndpoint[str, str]:
        def endpoint(ctx: Context, requests: AsyncIterator[str]) -> AsyncIterator[str]:
            return next(ctx, requests)

        return endpoint  # drops the name: the chain gives it back

    tagged = named_stream("tokens")(tokens)
    assert endpoint_name(tagged) == "tokens"
    stacked = stream_chain(passthrough, passthrough)(tagged)
    assert endpoint_name(stacked) == "tokens"
    with pytest.raises(ValueError, match="empty"):
        named_stream("")


async def test_a_lifted_layer_sees_one_call_per_whole_stream() -> None:
    seen: list[tuple[str, object]] = []

    def recording(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        async def endpoint(ctx: Context, request: Req) -> Resp:
            seen.append(("start", request))
            try:
                result = await next(ctx, request)
            except Exception as exc:
                seen.append(("error", type(exc).__name__))
                raise
            seen.append(("end", result))
            return result

        return keep_name(endpoint, next)

    lifted = lift(recording)(named_stream("tokens")(tokens))
    assert endpoint_name(lifted) == "tokens"
    stream = lifted(Context(), messages("a b c"))
    assert await anext(stream) == "A"
    assert seen == [("start", None)]  # the call is open while the stream is read
    assert await collect(stream) == ["B", "C"]
    assert seen == [("start", None), ("end", None)]

    @server_stream
    async def failing(ctx: Context, text: str) -> AsyncIterator[str]:
        yield text
        raise Unavailable("upstream gone")

    seen.clear()
    with pytest.raises(Unavailable, match="upstream gone"):
        await collect(lift(recording)(failing)(Context(), messages("x")))
    assert seen == [("start", None), ("error", "Unavailable")]


async def test_a_lifted_limiter_holds_its_slot_for_the_stream_and_refuses_before_it_starts() -> (
    None
):
    started: list[str] = []

    @server_stream
    async def slow(ctx: Context, text: str) -> AsyncIterator[str]:
        started.append(text)
        yield text
        await asyncio.sleep(10)
        yield text

    limited = lift(concurrency_limit(1, reject_code=RateLimited.default_code))(slow)
    first = limited(Context(), messages("first"))
    assert await anext(first) == "first"
    with pytest.raises(RateLimited):
        await collect(limited(Context(), messages("second")))
    assert started == ["first"]  # refused before the endpoint ran
    await close_stream(first)  # the reader stops: the stream is cancelled, the slot freed
    second = limited(Context(), messages("third"))
    assert await anext(second) == "third"
    await close_stream(second)


async def test_a_reader_that_stops_reading_stops_the_endpoint_with_bounded_buffering() -> None:
    produced: list[int] = []
    cleaned = asyncio.Event()

    @server_stream
    async def numbers(ctx: Context, n: int) -> AsyncIterator[int]:
        try:
            for i in range(n):
                produced.append(i)
                yield i
        finally:
            cleaned.set()

    def observe(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        return next

    stream = lift(observe)(numbers)(Context(), messages(1_000_000))
    assert await anext(stream) == 0
    await asyncio.sleep(0.05)  # the endpoint runs ahead by at most a message or two
    assert len(produced) <= 3
    await close_stream(stream)
    async with asyncio.timeout(5):
        await cleaned.wait()  # its finally ran
