"""The gRPC Client against a hostile upstream (issue 24, part 2), on a real grpc.aio server.

A reply over the channel's receive limit (grpc's ``grpc.max_receive_message_length``,
4 MiB by default) is an ``Unavailable`` naming that limit, not grpc's
RESOURCE_EXHAUSTED (which kitpy would raise as a rate limit); a long error
message with control characters arrives capped and on one line.
"""

from __future__ import annotations

import asyncio

import grpc
import grpc.aio
import pytest

from examples.stringsvc.endpoints import (
    CountRequest,
    CountResponse,
    Endpoints,
    UppercaseRequest,
    UppercaseResponse,
    make_tokens_endpoint,
)
from examples.stringsvc.proxy import ProxyingService
from examples.stringsvc.service import BasicStringService
from examples.stringsvc.transport_grpc import make_grpc_client, start_grpc_server
from kitpy import Context, InvalidArgument, KitError, Unavailable
from kitpy.errors import Code, is_retryable
from kitpy.transport.relay import MAX_RELAYED_MESSAGE

from .harness import echo_client, echo_server, serving

MiB = 1024 * 1024
OVER_4_MIB = "upstream response over 4 MiB (grpc.max_receive_message_length)"


async def answer_of_size(ctx: Context, request: str) -> str:
    """The request names the size of the answer, in MiB; "ok" is answered as it is."""
    return request if request == "ok" else "x" * (int(request) * MiB)


async def test_a_10_mib_reply_over_the_default_limit_is_unavailable_naming_the_limit() -> None:
    async with serving(echo_server(answer_of_size)) as running, asyncio.timeout(20):
        client = echo_client(running.channel)
        with pytest.raises(Unavailable) as info:
            await client(Context(), "10")
        assert type(info.value) is Unavailable
        assert info.value.message == OVER_4_MIB
        assert is_retryable(info.value)  # another instance may answer properly
        assert isinstance(info.value.__cause__, grpc.aio.AioRpcError)  # grpc's words, for logs
        assert await client(Context(), "ok") == "ok"  # the channel is unharmed


async def test_the_limit_is_the_channels_option() -> None:
    async with serving(echo_server(answer_of_size)) as running, asyncio.timeout(20):
        options = [("grpc.max_receive_message_length", 16 * MiB)]
        async with grpc.aio.insecure_channel(running.target, options=options) as roomy:
            assert len(await echo_client(roomy)(Context(), "10")) == 10 * MiB
        options = [("grpc.max_receive_message_length", MiB)]
        async with grpc.aio.insecure_channel(running.target, options=options) as tight:
            with pytest.raises(Unavailable) as info:
                await echo_client(tight)(Context(), "2")
        assert info.value.message == (
            "upstream response over 1 MiB (grpc.max_receive_message_length)"
        )


async def test_a_request_the_upstream_refuses_as_too_large_is_not_called_a_large_reply() -> None:
    async with serving(echo_server(answer_of_size)) as running, asyncio.timeout(20):
        with pytest.raises(KitError) as info:  # the *server's* 4 MiB receive limit
            await echo_client(running.channel)(Context(), "x" * (5 * MiB))
        assert info.value.code is Code.RESOURCE_EXHAUSTED
        assert "upstream response over" not in info.value.message


async def test_a_long_error_message_arrives_capped_and_on_one_line() -> None:
    async def fail(ctx: Context, request: str) -> str:
        raise InvalidArgument("bad\r\ninput\x1b[2J " + "y" * 3000)

    async with serving(echo_server(fail)) as running, asyncio.timeout(20):
        with pytest.raises(InvalidArgument) as info:
            await echo_client(running.channel)(Context(), "a")
    message = info.value.message
    assert len(message) == MAX_RELAYED_MESSAGE
    assert message.startswith("bad input [2J yyy")
    assert message.endswith("y\u2026")
    assert message.isprintable()


async def test_the_stringsvc_proxy_over_grpc_survives_a_10_mib_reply() -> None:
    async def huge(ctx: Context, request: UppercaseRequest) -> UppercaseResponse:
        return UppercaseResponse(v="X" * (10 * MiB))

    async def no_count(ctx: Context, request: CountRequest) -> CountResponse:
        raise AssertionError("not called")

    endpoints = Endpoints(
        uppercase_endpoint=huge,
        count_endpoint=no_count,
        tokens_endpoint=make_tokens_endpoint(BasicStringService()),
    )
    server, port = await start_grpc_server(endpoints, port=0, reflection=False)
    try:
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
            asyncio.timeout(20),
        ):
            proxy = ProxyingService(
                BasicStringService(), make_grpc_client(channel).uppercase_endpoint
            )
            with pytest.raises(Unavailable) as info:
                await proxy.uppercase(Context(), "hi")
        assert info.value.message == "uppercase is unavailable"  # not "over its rate limit"
        cause = info.value.__cause__
        assert isinstance(cause, Unavailable)
        assert cause.message == OVER_4_MIB
    finally:
        await server.stop(grace=0)
