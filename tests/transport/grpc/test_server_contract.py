"""What every gRPC Server response promises: the operation name, the request id, one error code.

A real grpc.aio server on 127.0.0.1 (port 0), called with kitpy's Client and
with a plain grpc.aio multi-callable, as any other client would.
"""

from __future__ import annotations

from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf.wrappers_pb2 import StringValue

from kitpy import OPERATION, REQUEST_ID, Context
from kitpy.errors import Code, Internal, InvalidArgument
from kitpy.transport.grpc import Server, incoming_request_id

from .harness import PATH, decode, echo_client, echo_server, encode, serving


def raw_call(channel: grpc.aio.Channel) -> grpc.aio.UnaryUnaryMultiCallable[Any, Any]:
    return channel.unary_unary(
        PATH,
        request_serializer=StringValue.SerializeToString,
        response_deserializer=StringValue.FromString,
    )


async def test_the_endpoint_sees_the_method_as_the_operation() -> None:
    seen: list[str] = []

    async def record(ctx: Context, s: str) -> str:
        seen.append(ctx[OPERATION])
        return s

    named = echo_server(record)
    unnamed: Server[str, str, Any, Any] = Server(record, decode, encode)  # no method=
    for server in (named, unnamed):
        async with serving(server) as running:
            await echo_client(running.channel)(Context(), "x")
    assert seen == [PATH, PATH]  # GrpcServer names a Server built without a method


async def test_every_response_carries_the_request_id_in_trailing_metadata() -> None:
    seen: list[str] = []

    async def record(ctx: Context, s: str) -> str:
        seen.append(ctx[REQUEST_ID])
        if s == "fail":
            raise InvalidArgument("no")
        return s

    async with serving(echo_server(record)) as running:
        call = raw_call(running.channel)
        ok = call(StringValue(value="ok"))
        given = call(StringValue(value="ok"), metadata=(("x-request-id", "caller-7"),))
        await ok
        await given
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(StringValue(value="fail"), metadata=(("x-request-id", "caller-8"),))
        made_up = dict(await ok.trailing_metadata() or ())["x-request-id"]
        assert dict(await given.trailing_metadata() or ())["x-request-id"] == "caller-7"
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert dict(info.value.trailing_metadata() or ())["x-request-id"] == "caller-8"
    assert sorted(seen) == sorted(
        [made_up, "caller-7", "caller-8"]
    )  # what logs show  # what the endpoint (and a log line) saw


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ((("x-request-id", "r-1"), ("x-other", "2")), "r-1"),
        ((("x-request-id", "r-1"), ("x-request-id", "r-2")), "r-2"),  # the last wins
        ((("x-request-id", "r" * 128),), "r" * 128),
        ((("x-request-id", "r" * 129),), None),
        ((("x-request-id", ""),), None),
        ((("x-request-id", b"r-1"),), None),
        ((("x-request-id-bin", b"r-1"),), None),
        ((), None),
    ],
)
def test_incoming_request_id_keeps_a_usable_id_only(
    pairs: tuple[tuple[str, str | bytes], ...], expected: str | None
) -> None:
    assert incoming_request_id(pairs) == expected


async def test_an_unusable_request_id_is_replaced_by_a_new_one() -> None:
    seen: list[str] = []

    async def record(ctx: Context, s: str) -> str:
        seen.append(ctx[REQUEST_ID])
        return s

    async with serving(echo_server(record)) as running:
        call = raw_call(running.channel)
        first = call(StringValue(value="ok"), metadata=(("x-request-id", "r" * 129),))
        await first
        second = call(StringValue(value="ok"))
        await second
    ids = [str(dict(await c.trailing_metadata() or ())["x-request-id"]) for c in (first, second)]
    assert ids == seen
    assert "r" * 129 not in ids
    prefix, _, number = ids[0].rpartition("-")
    assert ids[1] == f"{prefix}-{int(number) + 1}"  # one Server's prefix and counter


async def test_an_encoding_failure_is_internal_handled_and_finalized() -> None:
    handled: list[BaseException] = []
    codes: list[Code] = []

    def bad_encode(ctx: Context, value: str) -> StringValue:
        raise TypeError("cannot encode str")

    server: Server[str, str, Any, Any] = Server(
        lambda ctx, s: _echo(s),
        decode,
        bad_encode,
        method=PATH,
        error_handler=lambda ctx, exc: handled.append(exc),
        finalizer=[lambda ctx, code: codes.append(code)],
    )
    async with serving(server) as running:
        with pytest.raises(Internal) as info:
            await echo_client(running.channel)(Context(), "x")
    assert info.value.message == "could not encode the response"
    [err] = handled
    assert isinstance(err, Internal)
    assert isinstance(err.__cause__, TypeError)  # logged with the encoder's own traceback
    assert err.__cause__.__traceback__ is not None
    assert codes == [Code.INTERNAL]


async def _echo(s: str) -> str:
    return s
