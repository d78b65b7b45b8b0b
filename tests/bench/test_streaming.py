"""bench/streaming.py's two servers stream the same messages, and its load client counts them.

Both servers are started in-process on 127.0.0.1 (port 0) by the bench's own
``start_server`` and called over a real grpc.aio channel; nothing is timed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest

from bench.streaming import EXPECTED, TEXT, WORDS, load, start_server, tokens_call
from examples.stringsvc.pb import stringsvc_pb2 as pb


@pytest.fixture(params=["raw", "kitpy"])
async def served(request: pytest.FixtureRequest) -> AsyncIterator[grpc.aio.Channel]:
    async with asyncio.timeout(5):
        port, stop = await start_server(request.param)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        async with asyncio.timeout(5):
            await stop()


async def test_each_server_streams_the_words_upper_cased_with_a_request_id(
    served: grpc.aio.Channel,
) -> None:
    call = tokens_call(served)(pb.TokensRequest(s=TEXT), timeout=5)
    words = [reply.v async for reply in call]
    assert words == EXPECTED
    assert len(words) == WORDS
    trailers = dict(await call.trailing_metadata() or ())
    assert trailers.get("x-request-id")  # both send one, as the bench's docstring says


async def test_each_server_refuses_an_empty_string(served: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in tokens_call(served)(pb.TokensRequest(s=""), timeout=5):
            pass
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_the_load_client_counts_only_whole_streams(served: grpc.aio.Channel) -> None:
    async with asyncio.timeout(5):
        durations = await load(tokens_call(served), 0.1, concurrency=2)
    assert durations  # at least one whole stream per worker started before the end
    assert all(d > 0 for d in durations)


async def test_the_load_client_refuses_a_short_stream() -> None:
    """A server that ends a stream early fails the bench instead of being counted."""

    async def short(
        request: pb.TokensRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> AsyncIterator[pb.TokensResponse]:
        yield pb.TokensResponse(v="ONLY")

    server = grpc.aio.server()
    handler = grpc.unary_stream_rpc_method_handler(
        short,
        request_deserializer=pb.TokensRequest.FromString,
        response_serializer=pb.TokensResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("stringsvc.v1.StringService", {"Tokens": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(RuntimeError, match=f"brought 1 messages, not {WORDS}"):
                async with asyncio.timeout(5):
                    await load(tokens_call(channel), 0.05, concurrency=1)
    finally:
        await server.stop(None)
