"""Fuzz gRPC metadata and error statuses over a real grpc.aio channel to a kitpy server.

A kitpy :class:`~kitpy.transport.grpc.Client` sends arbitrary metadata (any
valid key in any letter case, printable values, arbitrary bytes under ``-bin``
keys, any ``x-request-id``) to a kitpy :class:`~kitpy.transport.grpc.Server`
registered on a :class:`~kitpy.transport.grpc.GrpcServer`.  Every call must
succeed with the metadata delivered intact, and the request id must come back
as sent (when usable) or freshly made.  A second test raises ``KitError`` s with
any code and any message behind the server: the client gets the same
subclass, code and message -- never INTERNAL or UNKNOWN made up by kitpy.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf.wrappers_pb2 import StringValue
from hypothesis import given
from hypothesis import strategies as st

from kitpy import Context, Key
from kitpy.context import REQUEST_ID
from kitpy.errors import Code, KitError, error_class, from_code
from kitpy.transport.grpc import (
    METADATA,
    Client,
    GrpcServer,
    Server,
    context_to_response_metadata,
    response_metadata_to_context,
)
from kitpy.transport.relay import relayed_message

from .harness import LoopThread, fuzz_settings, loop_thread

SERVICE, METHOD = "fuzz.v1.Echo", "Call"
ECHOED_ID: Key[str] = Key("echoed_id")
FAIL_PREFIX = "fail:"


async def echo(ctx: Context, request: str) -> str:
    """Reply with the metadata received (as repr), or raise the error the request names."""
    if request.startswith(FAIL_PREFIX):
        code_text, _, message = request.removeprefix(FAIL_PREFIX).partition(":")
        raise from_code(Code(int(code_text)), message)
    return repr(sorted(ctx[METADATA].items()))


def add_echo(server: Server[Any, Any, Any, Any], registrar: Any) -> None:
    handler = grpc.unary_unary_rpc_method_handler(
        server,
        request_deserializer=StringValue.FromString,
        response_serializer=StringValue.SerializeToString,
    )
    registrar.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {METHOD: handler}),)
    )


@dataclass
class Rig:
    thread: LoopThread
    channel: grpc.aio.Channel
    server: GrpcServer

    async def call(self, request: str, metadata: dict[str, str | bytes]) -> tuple[str, str | None]:
        def send(ctx: Context, outgoing: Any) -> Context:
            outgoing.update(metadata)
            return ctx

        client: Client[str, tuple[str, str | None], StringValue, StringValue] = Client(
            self.channel,
            SERVICE,
            METHOD,
            lambda ctx, r: StringValue(value=r),
            lambda ctx, m: (m.value, ctx.get(ECHOED_ID)),
            StringValue,
            before=[send],
            after=[response_metadata_to_context("x-request-id", ECHOED_ID)],
        )
        result: tuple[str, str | None] = await client(Context().with_timeout(10), request)
        return result


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    kit: Server[str, str, StringValue, StringValue] = Server(
        echo,
        lambda ctx, m: m.value,
        lambda ctx, r: StringValue(value=r),
        method=f"/{SERVICE}/{METHOD}",
        after=[context_to_response_metadata(REQUEST_ID, "x-request-id")],
    )

    async def start() -> Rig:
        server = GrpcServer()
        server.add_service(SERVICE, add_echo, kit)
        port = await server.start("127.0.0.1:0")
        return Rig(thread, grpc.aio.insecure_channel(f"127.0.0.1:{port}"), server)

    with loop_thread() as thread:
        running = thread.run(start())
        try:
            yield running
        finally:
            thread.run(running.channel.close())
            thread.run(running.server.stop(grace=1.0))


RESERVED = ("grpc-", "te", "content-type", "user-agent", "host", "x-request-id")
keys = st.from_regex(r"\A[a-zA-Z0-9][a-zA-Z0-9_.-]{0,24}\Z").filter(
    lambda k: not k.lower().startswith(RESERVED)
)
printable = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=60)
values = st.one_of(
    printable,
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60).map(
        lambda s: f"x{s}x"  # inner spaces
    ),
)


@st.composite
def metadata(draw: st.DrawFn) -> dict[str, str | bytes]:
    out: dict[str, str | bytes] = {}
    for key in draw(st.lists(keys, max_size=6, unique_by=str.lower)):
        if draw(st.booleans()):
            out[key + "-bin"] = draw(st.binary(max_size=80))
        else:
            out[key] = draw(values)
    return out


@fuzz_settings(150)
@given(sent=metadata(), request_id=st.none() | printable)
def test_any_metadata_arrives_intact(
    rig: Rig, sent: dict[str, str | bytes], request_id: str | None
) -> None:
    outgoing = dict(sent)
    if request_id is not None:
        outgoing["x-request-id"] = request_id
    reply, echoed = rig.thread.run(rig.call("hi", outgoing))
    received = dict(ast.literal_eval(reply))  # the server's repr: str and bytes literals
    for key, value in sent.items():
        assert received[key.lower()] == value
    assert echoed
    if request_id and len(request_id) <= 128:
        assert echoed == request_id
    else:
        assert echoed != request_id


@fuzz_settings(150)
@given(
    code=st.sampled_from([c for c in Code if c is not Code.OK]),
    message=st.text(max_size=80).filter(lambda s: s.strip()),
)
def test_any_error_crosses_with_its_code_and_message(rig: Rig, code: Code, message: str) -> None:
    with pytest.raises(KitError) as info:
        rig.thread.run(rig.call(f"{FAIL_PREFIX}{code.value}:{message}", {}))
    err = info.value
    assert err.code is code
    assert type(err) is error_class(code)
    relayed = relayed_message(message)  # the Client relays it on one line, capped
    assert err.message == (relayed or code.name.replace("_", " ").lower())


@fuzz_settings(100)
@given(seconds=st.floats(min_value=0, allow_nan=False, allow_infinity=True))
def test_any_deadline_is_sent_as_a_timeout_grpc_accepts(rig: Rig, seconds: float) -> None:
    async def call() -> str:
        client: Client[str, str, StringValue, StringValue] = Client(
            rig.channel,
            SERVICE,
            METHOD,
            lambda ctx, r: StringValue(value=r),
            lambda ctx, m: m.value,
            StringValue,
        )
        reply: str = await client(Context().with_timeout(seconds), "hi")
        return reply

    try:
        reply = rig.thread.run(call())
    except KitError as exc:  # only a budget too small to make the trip may fail
        code: Code | None = exc.code
    else:
        assert reply.startswith("[")
        return
    assert code is Code.DEADLINE_EXCEEDED
    assert seconds < 1.0
