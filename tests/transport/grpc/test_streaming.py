"""Streaming gRPC: StreamServer and StreamClient, all three kinds, through a real GrpcServer.

Real grpc.aio server and channel on 127.0.0.1; the messages are protobuf's
``StringValue`` (no generated code): ``/test.v1.Streams/Tokens`` is server
streaming, ``Total`` client streaming, ``Chat`` bidi.  Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf.wrappers_pb2 import StringValue

from kitpy import (
    OPERATION,
    REQUEST_ID,
    Cancelled,
    Code,
    Context,
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    NotFound,
    Unauthenticated,
    Unavailable,
    Unknown,
)
from kitpy.context import ENDPOINT_ERROR, ENDPOINT_NAME
from kitpy.endpoint.stream import (
    StreamEndpoint,
    client_stream,
    close_stream,
    collect,
    lift,
    messages,
    named_stream,
    server_stream,
)
from kitpy.ratelimit import ConcurrencyLimiter, concurrency_limit
from kitpy.transport.grpc import (
    METADATA,
    METHOD,
    PEER,
    GrpcServer,
    StreamClient,
    StreamKind,
    StreamServer,
    set_response_metadata,
)

SERVICE = "test.v1.Streams"
KINDS: dict[str, StreamKind] = {
    "Tokens": "unary_stream",
    "Total": "stream_unary",
    "Chat": "stream_stream",
}
WAIT = 5.0  # the longest any single step may take


def path(name: str) -> str:
    return f"/{SERVICE}/{name}"


def decode(ctx: Context, message: StringValue) -> str:
    if message.value == "undecodable":
        raise ValueError("secret decoder detail")
    return message.value


def encode(ctx: Context, value: str) -> StringValue:
    return StringValue(value=value)


# -- the endpoints -------------------------------------------------------------------------


@server_stream
async def tokens(ctx: Context, text: str) -> AsyncIterator[str]:
    for word in text.split():
        yield word.upper()


@client_stream
async def total(ctx: Context, words: AsyncIterator[str]) -> str:
    return "+".join([word async for word in words])


async def chat(ctx: Context, lines: AsyncIterator[str]) -> AsyncIterator[str]:
    async for line in lines:
        yield f"re: {line}"


ENDPOINTS: dict[str, StreamEndpoint[str, str]] = {"Tokens": tokens, "Total": total, "Chat": chat}


# -- the harness ---------------------------------------------------------------------------

_HANDLERS: dict[StreamKind, Callable[..., grpc.RpcMethodHandler[Any, Any]]] = {
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


def _add(servers: Mapping[str, StreamServer[Any, Any, Any, Any]], server: Any) -> None:
    """Register like generated code does: generic handler and registered method handlers."""
    handlers = {
        name: _HANDLERS[KINDS[name]](
            stream_server,
            request_deserializer=StringValue.FromString,
            response_serializer=StringValue.SerializeToString,
        )
        for name, stream_server in servers.items()
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_registered_method_handlers(SERVICE, handlers)


def _add_unary(methods: Mapping[str, Any], server: Any) -> None:
    """Register ``methods`` as unary methods of ``test.v1.Echo``, as generated code would."""
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            behavior,
            request_deserializer=StringValue.FromString,
            response_serializer=StringValue.SerializeToString,
        )
        for name, behavior in methods.items()
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.v1.Echo", handlers),)
    )
    server.add_registered_method_handlers("test.v1.Echo", handlers)


def stream_server(
    name: str, endpoint: StreamEndpoint[str, str] | None = None, **options: Any
) -> StreamServer[str, str, StringValue, StringValue]:
    return StreamServer(
        ENDPOINTS[name] if endpoint is None else endpoint,
        decode,
        encode,
        kind=KINDS[name],
        **options,
    )


def stream_client(
    channel: grpc.aio.Channel, name: str, **options: Any
) -> StreamClient[str, str, StringValue, StringValue]:
    return StreamClient(
        channel,
        SERVICE,
        name,
        encode,
        lambda c, m: m.value,
        StringValue,
        kind=KINDS[name],
        **options,
    )


@dataclass
class Running:
    server: GrpcServer
    channel: grpc.aio.Channel

    def client(self, name: str, **options: Any) -> StreamClient[str, str, Any, Any]:
        return stream_client(self.channel, name, **options)

    def raw(self, name: str) -> Any:
        """A plain grpc multi-callable sending and receiving bytes."""
        open_call = {
            "unary_stream": self.channel.unary_stream,
            "stream_unary": self.channel.stream_unary,
            "stream_stream": self.channel.stream_stream,
        }[KINDS[name]]
        return open_call(path(name))


@asynccontextmanager
async def serving(
    servers: Mapping[str, StreamServer[Any, Any, Any, Any]],
    *,
    channel_options: tuple[tuple[str, Any], ...] = (),
) -> AsyncIterator[Running]:
    """GrpcServer serving ``servers`` (StreamServers as the servicer's methods); a channel to it."""
    grpc_server = GrpcServer()
    grpc_server.add_service(SERVICE, _add, servers)
    port = await grpc_server.start("127.0.0.1:0")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=channel_options)
    try:
        yield Running(grpc_server, channel)
    finally:
        async with asyncio.timeout(10):
            await channel.close()
            await grpc_server.stop(grace=0)


async def read_into(got: list[str], replies: AsyncIterator[str]) -> None:
    """Append each reply to ``got`` until the stream ends (or raises)."""
    try:
        async for reply in replies:
            got.append(reply)
    finally:
        await close_stream(replies)


@dataclass
class Seen:
    """What a StreamServer's hooks were shown."""

    errors: list[tuple[BaseException, bool | None, str | None]] = field(default_factory=list)
    codes: list[Code] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def options(self) -> dict[str, Any]:
        def error_handler(ctx: Context, exc: BaseException) -> None:
            self.errors.append((exc, ctx.get(ENDPOINT_ERROR), ctx.get(ENDPOINT_NAME)))

        def finalizer(ctx: Context, code: Code) -> None:
            self.codes.append(code)
            self.done.set()

        return {"error_handler": error_handler, "finalizer": [finalizer]}

    async def finished(self) -> None:
        async with asyncio.timeout(WAIT):
            await self.done.wait()


# -- all three kinds -----------------------------------------------------------------------


async def test_all_three_kinds_end_to_end() -> None:
    seen = Seen()
    servers = {name: stream_server(name, **seen.options()) for name in KINDS}
    async with serving(servers) as running:
        async with asyncio.timeout(WAIT):
            ctx = Context().with_timeout(WAIT)
            assert await collect(running.client("Tokens")(ctx, messages("go kit rocks"))) == [
                "GO",
                "KIT",
                "ROCKS",
            ]
            assert await collect(running.client("Total")(ctx, messages("a", "b", "c"))) == ["a+b+c"]
            assert await collect(running.client("Chat")(ctx, messages("hi", "bye"))) == [
                "re: hi",
                "re: bye",
            ]
            assert await collect(running.client("Chat")(ctx, messages())) == []
    assert seen.codes == [Code.OK] * 4
    assert seen.errors == []


async def test_a_bidi_stream_answers_each_message_before_the_next_is_sent() -> None:
    """Interleaved: the client sends the next line only after reading the answer to the last."""
    async with serving({"Chat": stream_server("Chat")}) as running:
        outbox: asyncio.Queue[str | None] = asyncio.Queue()

        async def lines() -> AsyncIterator[str]:
            while (line := await outbox.get()) is not None:
                yield line

        replies = running.client("Chat")(Context(), lines())
        async with asyncio.timeout(WAIT), contextlib.aclosing(replies):
            for line in ("one", "two", "three"):
                outbox.put_nowait(line)
                assert await anext(replies) == f"re: {line}"
            outbox.put_nowait(None)
            with pytest.raises(StopAsyncIteration):
                await anext(replies)


async def test_the_context_reaches_the_endpoint() -> None:
    seen: dict[str, Any] = {}

    @server_stream
    async def look(ctx: Context, text: str) -> AsyncIterator[str]:
        seen.setdefault("ids", []).append(ctx[REQUEST_ID])
        if text != "x":
            yield text
            return
        seen.update(
            method=ctx[METHOD],
            operation=ctx[OPERATION],
            request_id=ctx[REQUEST_ID],
            peer=ctx[PEER],
            remaining=ctx.time_remaining(),
        )
        yield text

    def send_id(ctx: Context, metadata: Any) -> Context:
        metadata["x-request-id"] = "stream-42"
        return ctx

    trailing: dict[str, Any] = {}

    def keep(ctx: Context, initial: Any, trailers: Any) -> Context:
        trailing.update(trailers)
        return ctx

    async with serving({"Tokens": stream_server("Tokens", look)}) as running:
        client = running.client("Tokens", before=[send_id], after=[keep])
        async with asyncio.timeout(WAIT):
            assert await collect(client(Context().with_timeout(3.0), messages("x"))) == ["x"]
            # without an id the server makes one, unique per stream
            for _ in range(2):
                await collect(running.client("Tokens")(Context(), messages("y")))
    assert seen["method"] == seen["operation"] == path("Tokens")  # GrpcServer filled it in
    assert seen["peer"].startswith("ipv4:127.0.0.1:")
    assert 2.0 < seen["remaining"] <= 3.0 * 1.01 + 0.001
    assert trailing["x-request-id"] == "stream-42"
    assert seen["request_id"] == "stream-42"
    assert len(set(seen["ids"])) == 3


async def test_after_funcs_send_initial_metadata_before_the_first_message_and_trailers() -> None:
    release = asyncio.Event()

    @server_stream
    async def slow(ctx: Context, text: str) -> AsyncIterator[str]:
        yield "first"
        await release.wait()
        yield "second"

    server = stream_server(
        "Tokens",
        slow,
        after=[
            set_response_metadata("x-shard", "7"),
            set_response_metadata("x-end", "yes", trailing=True),
        ],
    )
    async with serving({"Tokens": server}) as running:
        async with asyncio.timeout(WAIT):
            call = running.raw("Tokens")(StringValue(value="x").SerializeToString())
            assert await call.read() == StringValue(value="first").SerializeToString()
            assert ("x-shard", "7") in tuple(await call.initial_metadata())  # before the end
            release.set()
            assert await call.read() == StringValue(value="second").SerializeToString()
            assert await call.read() is grpc.aio.EOF
            trailers = dict(tuple(await call.trailing_metadata()))
    assert trailers["x-end"] == "yes"
    assert trailers["x-request-id"]


async def test_a_stream_client_is_a_stream_endpoint_a_stream_server_can_serve() -> None:
    """A proxy: the front server's endpoint is a StreamClient of the back server."""

    async def gone(ctx: Context, lines: AsyncIterator[str]) -> AsyncIterator[str]:
        async for line in lines:
            if line == "stop":
                raise NotFound("no such line")
            yield f"re: {line}"

    async with serving({"Chat": stream_server("Chat", gone)}) as back:
        forward: StreamEndpoint[str, str] = back.client("Chat")
        async with serving({"Chat": stream_server("Chat", forward)}) as front:
            got: list[str] = []
            async with asyncio.timeout(WAIT):
                replies = front.client("Chat")(Context(), messages("a", "b"))
                assert await collect(replies) == ["re: a", "re: b"]
                with pytest.raises(NotFound, match="no such line"):  # through both hops
                    await read_into(got, front.client("Chat")(Context(), messages("c", "stop")))
    assert got == ["re: c"]


# -- authentication and admission ----------------------------------------------------------


async def test_authenticate_runs_once_before_any_request_message_is_read() -> None:
    checks: list[str] = []
    started = asyncio.Event()

    async def authenticate(ctx: Context) -> Context:
        token = ctx[METADATA].get("authorization")
        checks.append(str(token))
        if token != "Bearer good":
            raise Unauthenticated("missing or bad token")
        return ctx

    async def counted(ctx: Context, lines: AsyncIterator[str]) -> AsyncIterator[str]:
        started.set()
        async for line in chat(ctx, lines):
            yield line

    def bearer(value: str) -> Callable[[Context, Any], Context]:
        def before(ctx: Context, metadata: Any) -> Context:
            metadata["authorization"] = value
            return ctx

        return before

    sent: list[str] = []

    async def lines() -> AsyncIterator[str]:
        for line in ("a", "b", "c"):
            sent.append(line)
            yield line

    server = stream_server("Chat", counted, authenticate=authenticate)
    async with serving({"Chat": server}) as running:
        async with asyncio.timeout(WAIT):
            anonymous = running.client("Chat")
            with pytest.raises(Unauthenticated, match="missing or bad token"):
                await collect(anonymous(Context(), lines()))
            assert not started.is_set()  # the endpoint never ran
            assert checks == ["None"]
            signed = running.client("Chat", before=[bearer("Bearer good")])
            assert await collect(signed(Context(), lines())) == ["re: a", "re: b", "re: c"]
    assert checks == ["None", "Bearer good"]  # once per stream, not per message


@pytest.mark.parametrize("name", ["Total", "Chat"])
async def test_a_refusal_while_the_client_still_sends_keeps_its_status(name: str) -> None:
    """grpc.aio alone reports most of these as INTERNAL (grpc/grpc#36066): a write that fails
    because the server's status ended the call overwrites that status.  Measured with plain
    grpc.aio calls like these: 179 of 200 INTERNAL."""

    async def refuse(ctx: Context) -> Context:
        raise Unauthenticated("missing or bad token", headers={"www-authenticate": "Bearer"})

    async def many() -> AsyncIterator[str]:
        for _ in range(50):
            yield "x" * 1024

    server = stream_server(name, authenticate=refuse)
    async with serving({name: server}) as running:
        async with asyncio.timeout(WAIT * 2):
            for _ in range(30):
                with pytest.raises(Unauthenticated) as raised:
                    await collect(running.client(name)(Context(), many()))
                assert raised.value.message == "missing or bad token"
                assert raised.value.headers is not None
                assert raised.value.headers["www-authenticate"] == "Bearer"
                assert raised.value.headers["x-request-id"]


async def test_admission_covers_the_opening_and_a_lifted_limit_caps_open_streams() -> None:
    limiter = ConcurrencyLimiter(4)
    opening = asyncio.Event()
    let_in = asyncio.Event()
    release = asyncio.Event()

    async def authenticate(ctx: Context) -> Context:
        opening.set()
        await let_in.wait()
        return ctx

    @server_stream
    async def held(ctx: Context, text: str) -> AsyncIterator[str]:
        yield "started"
        await release.wait()
        yield "done"

    capped = lift(concurrency_limit(1))(held)  # at most one stream open at once
    server = stream_server("Tokens", capped, admission=limiter, authenticate=authenticate)
    async with serving({"Tokens": server}) as running:
        async with asyncio.timeout(WAIT):
            first = running.client("Tokens")(Context(), messages("x"))
            reading = asyncio.ensure_future(anext(first))
            await opening.wait()
            assert limiter.in_flight == 1  # opening: authenticating holds the slot
            let_in.set()
            assert await reading == "started"
            assert limiter.in_flight == 0  # open: the shared pool is free for calls
            with pytest.raises(Unavailable):  # the lifted limit refuses a second open stream
                await collect(running.client("Tokens")(Context(), messages("y")))
            release.set()
            assert await collect(first) == ["done"]
            release.clear()
            second = running.client("Tokens")(Context(), messages("z"))
            assert await anext(second) == "started"  # the first one's slot came back
            release.set()
            assert await collect(second) == ["done"]
    assert limiter.in_flight == 0


# -- errors --------------------------------------------------------------------------------


async def test_a_server_error_mid_stream_arrives_after_the_messages_before_it() -> None:
    seen = Seen()

    @server_stream
    async def two_then_gone(ctx: Context, text: str) -> AsyncIterator[str]:
        yield "one"
        yield "two"
        raise NotFound("the rest is gone")

    endpoint = named_stream("two_then_gone")(two_then_gone)
    async with serving({"Tokens": stream_server("Tokens", endpoint, **seen.options())}) as running:
        got: list[str] = []
        async with asyncio.timeout(WAIT):
            with pytest.raises(NotFound) as raised:
                await read_into(got, running.client("Tokens")(Context(), messages("x")))
            await seen.finished()
    assert got == ["one", "two"]
    assert raised.value.message == "the rest is gone"
    assert raised.value.headers is not None
    assert raised.value.headers["x-request-id"]
    [(error, in_endpoint, name)] = seen.errors
    assert isinstance(error, NotFound)
    assert in_endpoint is True
    assert name == "two_then_gone"
    assert seen.codes == [Code.NOT_FOUND]


async def test_an_unexpected_exception_is_unknown_with_a_generic_message() -> None:
    seen = Seen()

    async def broken(ctx: Context, lines: AsyncIterator[str]) -> AsyncIterator[str]:
        async for line in lines:
            yield line
            raise RuntimeError("password=hunter2")

    async with serving({"Chat": stream_server("Chat", broken, **seen.options())}) as running:
        async with asyncio.timeout(WAIT):
            with pytest.raises(Unknown) as raised:
                await collect(running.client("Chat")(Context(), messages("a", "b")))
            await seen.finished()
    assert "hunter2" not in raised.value.message
    assert isinstance(seen.errors[0][0], RuntimeError)  # the handler sees the real one
    assert seen.codes == [Code.UNKNOWN]


@pytest.mark.parametrize(
    ("name", "second", "message"),
    [
        # bytes that are not a StringValue at all: the parser refuses them
        ("Chat", b"\xff\xff\xff", "not a valid google.protobuf.StringValue (message 2)"),
        ("Total", b"\xff\xff\xff", "not a valid google.protobuf.StringValue (message 2)"),
        # a StringValue the decoder refuses; its text does not leak
        ("Chat", StringValue(value="undecodable").SerializeToString(), "decode request message 2"),
    ],
)
async def test_a_request_message_that_does_not_decode_ends_the_stream(
    name: str, second: bytes, message: str
) -> None:
    seen = Seen()
    got: list[str] = []

    async def forgiving(ctx: Context, lines: AsyncIterator[str]) -> AsyncIterator[str]:
        """Catches the decode error and carries on: the stream still ends INVALID_ARGUMENT."""
        with contextlib.suppress(InvalidArgument):
            async for line in lines:
                got.append(line)
        yield "carried on"

    server = stream_server(name, forgiving, **seen.options())
    async with serving({name: server}) as running:
        async with asyncio.timeout(WAIT):
            call = running.raw(name)(
                messages(StringValue(value="fine").SerializeToString(), second, b"")
            )
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await (call if KINDS[name] == "stream_unary" else collect(call))
            await seen.finished()
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert message in (raised.value.details() or "")
    assert "secret" not in (raised.value.details() or "")
    assert got == ["fine"]  # the bad message never reached the endpoint
    [(error, in_endpoint, _)] = seen.errors
    assert isinstance(error, InvalidArgument)
    assert in_endpoint is False
    assert seen.codes == [Code.INVALID_ARGUMENT]


async def test_a_server_streaming_request_that_does_not_parse_never_reaches_the_endpoint() -> None:
    ran = asyncio.Event()

    @server_stream
    async def never(ctx: Context, text: str) -> AsyncIterator[str]:
        ran.set()
        yield text

    async with serving({"Tokens": stream_server("Tokens", never)}) as running:
        async with asyncio.timeout(WAIT):
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await collect(running.raw("Tokens")(b"\xff\xff\xff"))
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == (
        "invalid request: the body is not a valid google.protobuf.StringValue"
    )
    assert not ran.is_set()


@pytest.mark.parametrize("responses", [0, 2])
async def test_a_client_streaming_endpoint_must_give_exactly_one_response(responses: int) -> None:
    seen = Seen()

    async def wrong(ctx: Context, lines: AsyncIterator[str]) -> AsyncIterator[str]:
        async for _ in lines:
            pass
        for i in range(responses):
            yield str(i)

    async with serving({"Total": stream_server("Total", wrong, **seen.options())}) as running:
        async with asyncio.timeout(WAIT):
            with pytest.raises(Internal):
                await collect(running.client("Total")(Context(), messages("a")))
            await seen.finished()
    assert seen.codes == [Code.INTERNAL]


async def test_a_stream_server_of_the_wrong_kind_fails_add_service() -> None:
    server = GrpcServer()
    wrong = StreamServer(chat, decode, encode, kind="unary_stream")
    with pytest.raises(TypeError, match=r"/test.v1.Streams/Chat is a stream_stream method"):
        server.add_service(SERVICE, _add, {"Chat": wrong})
    unary = StreamServer(tokens, decode, encode, kind="unary_stream")
    with pytest.raises(TypeError, match=r"/test.v1.Echo/Call is a unary_unary method"):
        server.add_service("test.v1.Echo", _add_unary, {"Call": unary})
    with pytest.raises(ValueError, match="kind must be one of"):
        StreamServer(chat, decode, encode, kind="bidi")  # type: ignore[arg-type]  # on purpose


# -- deadlines -----------------------------------------------------------------------------


async def forever(ctx: Context, lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """A message every 50 ms until stopped."""
    i = 0
    while True:
        i += 1
        yield str(i)
        await asyncio.sleep(0.05)


async def test_the_client_deadline_covers_the_whole_stream() -> None:
    seen = Seen()
    cleaned = asyncio.Event()

    async def endless(ctx: Context, lines: AsyncIterator[str]) -> AsyncIterator[str]:
        try:
            async for item in forever(ctx, lines):
                yield item
        finally:
            cleaned.set()

    got: list[str] = []
    async with serving({"Chat": stream_server("Chat", endless, **seen.options())}) as running:
        started = time.monotonic()
        async with asyncio.timeout(WAIT):
            with pytest.raises(DeadlineExceeded):
                await read_into(
                    got, running.client("Chat")(Context().with_timeout(0.5), messages())
                )
            elapsed = time.monotonic() - started
            await seen.finished()
            await cleaned.wait()
    assert 0.45 <= elapsed < 1.5  # the deadline, plus slack for a busy machine
    assert len(got) >= 3  # messages flowed until then
    assert seen.codes == [Code.DEADLINE_EXCEEDED]
    assert isinstance(seen.errors[0][0], DeadlineExceeded)


async def test_a_sooner_server_deadline_covers_the_whole_stream() -> None:
    seen = Seen()
    server = stream_server("Chat", forever, root=Context().with_timeout(0.4), **seen.options())
    got: list[str] = []
    async with serving({"Chat": server}) as running:
        started = time.monotonic()
        async with asyncio.timeout(WAIT):
            with pytest.raises(DeadlineExceeded):
                await read_into(got, running.client("Chat")(Context(), messages()))
            elapsed = time.monotonic() - started
            await seen.finished()
    assert 0.35 <= elapsed < 1.5
    assert len(got) >= 3
    assert seen.codes == [Code.DEADLINE_EXCEEDED]


async def test_an_expired_context_fails_before_calling() -> None:
    calls: list[str] = []

    @server_stream
    async def record(ctx: Context, text: str) -> AsyncIterator[str]:
        calls.append(text)
        yield text

    async with serving({"Tokens": stream_server("Tokens", record)}) as running:
        async with asyncio.timeout(WAIT):
            with pytest.raises(DeadlineExceeded, match="before calling"):
                await collect(running.client("Tokens")(Context().with_timeout(0.0), messages("x")))
    assert calls == []


# -- cancellation, both ways ---------------------------------------------------------------


@pytest.mark.parametrize("how", ["close", "cancel the reader"])
async def test_a_client_that_stops_cancels_the_server_stream(how: str) -> None:
    seen = Seen()
    cleaned = asyncio.Event()

    async def endless(ctx: Context, lines: AsyncIterator[str]) -> AsyncIterator[str]:
        try:
            async for item in forever(ctx, lines):
                yield item
        finally:
            cleaned.set()

    client_saw: list[BaseException | None] = []
    async with serving({"Chat": stream_server("Chat", endless, **seen.options())}) as running:
        client = running.client("Chat", finalizer=[lambda ctx, error: client_saw.append(error)])
        async with asyncio.timeout(WAIT):
            replies = client(Context(), messages())
            if how == "close":
                assert [await anext(replies), await anext(replies)] == ["1", "2"]
                await close_stream(replies)
            else:
                reader = asyncio.create_task(collect(replies))
                await asyncio.sleep(0.2)
                reader.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await reader
            await cleaned.wait()  # the endpoint's finally ran
            await seen.finished()
    assert seen.codes == [Code.CANCELLED]
    [(error, in_endpoint, _)] = seen.errors
    assert isinstance(error, Cancelled)
    assert in_endpoint is not None
    [client_error] = client_saw
    if how == "close":
        assert isinstance(client_error, Cancelled)
    else:
        assert isinstance(client_error, asyncio.CancelledError)


async def test_a_client_that_cancels_while_the_server_reads_cancels_the_server_stream() -> None:
    """grpc.aio shows the server a cancelled call's requests as ended; the cancellation follows."""
    seen = Seen()
    cleaned = asyncio.Event()
    read: list[str] = []

    async def reads_then_answers(ctx: Context, lines: AsyncIterator[str]) -> AsyncIterator[str]:
        try:
            async for line in lines:
                read.append(line)
            for i in range(100):
                await asyncio.sleep(0.05)
                yield str(i)
        finally:
            cleaned.set()

    async def one_then_cancel() -> AsyncIterator[str]:
        yield "a"
        await asyncio.sleep(0.1)
        raise ValueError("no more lines")  # the client's own failure: it cancels the call

    server = stream_server("Chat", reads_then_answers, **seen.options())
    async with serving({"Chat": server}) as running:
        async with asyncio.timeout(WAIT):
            with pytest.raises(ValueError, match="no more lines"):
                await collect(running.client("Chat")(Context(), one_then_cancel()))
            await cleaned.wait()
            await seen.finished()
    assert read == ["a"]
    assert seen.codes == [Code.CANCELLED]


async def test_a_server_streaming_call_needs_one_request() -> None:
    async with serving({"Tokens": stream_server("Tokens")}) as running:
        async with asyncio.timeout(WAIT):
            with pytest.raises(InvalidArgument, match="takes one request message"):
                await collect(running.client("Tokens")(Context(), messages()))


async def test_a_server_that_stops_ends_the_client_stream_with_an_error() -> None:
    async with serving({"Chat": stream_server("Chat", forever)}) as running:
        async with asyncio.timeout(WAIT):
            replies = running.client("Chat")(Context(), messages())
            assert await anext(replies) == "1"
            await running.server.stop(grace=0)
            with pytest.raises((Unavailable, Cancelled)):
                await collect(replies)


# -- backpressure --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "channel_options", "most"),
    [
        # grpc's defaults: BDP probing grows the client's window; measured 383 messages, 6 MiB
        (16 * 1024, (), 8 << 20),
        # the window left at HTTP/2's 64 KiB: measured 95 messages of 1 KiB
        (1024, (("grpc.http2.bdp_probe", 0),), 192 << 10),
    ],
)
async def test_a_client_that_stops_reading_stops_the_endpoint(
    size: int, channel_options: tuple[tuple[str, Any], ...], most: int
) -> None:
    """grpc.aio's write waits on HTTP/2 flow control: the endpoint is not read past the window."""
    produced = 0
    payload = "x" * size

    @server_stream
    async def flood(ctx: Context, text: str) -> AsyncIterator[str]:
        nonlocal produced
        for _ in range(1_000_000):
            produced += 1
            yield payload

    server = stream_server("Tokens", flood)
    async with serving({"Tokens": server}, channel_options=channel_options) as running:
        async with asyncio.timeout(WAIT + 5):
            replies = running.client("Tokens")(Context(), messages("go"))
            assert await anext(replies) == payload  # then the client reads nothing
            stalled_at = -1
            for _ in range(40):  # until the endpoint has stopped for 0.25 s
                if produced == stalled_at:
                    break
                stalled_at = produced
                await asyncio.sleep(0.25)
            await asyncio.sleep(0.5)
            assert produced == stalled_at  # nothing moves while the client does not read
            for _ in range(stalled_at):  # reading again lets the endpoint go on
                await anext(replies)
            await asyncio.sleep(0.1)
            assert produced > stalled_at
            await close_stream(replies)
    assert stalled_at * size <= most, (stalled_at, size)


# -- the client's receive limit ------------------------------------------------------------


async def test_a_reply_over_the_receive_limit_is_unavailable_naming_it() -> None:
    @server_stream
    async def big(ctx: Context, text: str) -> AsyncIterator[str]:
        yield "small"
        yield "x" * 4096

    options = (("grpc.max_receive_message_length", 1024),)
    async with serving(
        {"Tokens": stream_server("Tokens", big)}, channel_options=options
    ) as running:
        got: list[str] = []
        async with asyncio.timeout(WAIT):
            with pytest.raises(
                Unavailable, match=r"over 1 KiB \(grpc.max_receive_message_length\)"
            ):
                await read_into(got, running.client("Tokens")(Context(), messages("x")))
    assert got == ["small"]


# -- a bare grpc.aio server ----------------------------------------------------------------


async def test_a_bare_grpc_aio_server_serves_a_stream_server_through_an_async_def() -> None:
    servers = {name: stream_server(name, method=path(name)) for name in KINDS}

    def delegate(name: str) -> Callable[..., Any]:
        async def method(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            return await servers[name](request, context)

        return method

    handlers = {
        name: _HANDLERS[kind](
            delegate(name),
            request_deserializer=StringValue.FromString,
            response_serializer=StringValue.SerializeToString,
        )
        for name, kind in KINDS.items()
    }
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            async with asyncio.timeout(WAIT):
                tokens_client = stream_client(channel, "Tokens")
                assert await collect(tokens_client(Context(), messages("a b"))) == ["A", "B"]
                total_client = stream_client(channel, "Total")
                assert await collect(total_client(Context(), messages("a", "b"))) == ["a+b"]
                chat_client = stream_client(channel, "Chat")
                assert await collect(chat_client(Context(), messages("a"))) == ["re: a"]
    finally:
        await server.stop(0)
