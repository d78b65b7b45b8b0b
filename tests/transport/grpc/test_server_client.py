"""kitpy gRPC Server and Client against each other over a real grpc.aio server on loopback."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import grpc
import grpc.aio
import pytest
from google.protobuf.wrappers_pb2 import StringValue

from kitpy import Code, Context, Endpoint, Key, KitError, chain
from kitpy.context import REQUEST_ID
from kitpy.errors import (
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    NotFound,
    Unauthenticated,
    Unavailable,
    Unknown,
    error_class,
    from_code,
)
from kitpy.transport.grpc import (
    METADATA,
    METHOD,
    PEER,
    Metadata,
    MutableMetadata,
    context_to_metadata,
    context_to_response_metadata,
    metadata_to_context,
    response_metadata_to_context,
    set_response_metadata,
)

from .harness import PATH, echo_client, echo_server, most_a_budget_arrives_as, serving

ERROR_CODES = [code for code in Code if code is not Code.OK]


async def upper(ctx: Context, s: str) -> str:
    return s.upper()


async def test_round_trip_and_context_keys() -> None:
    seen: list[Context] = []

    async def endpoint(ctx: Context, s: str) -> str:
        seen.append(ctx)
        return s.upper()

    async with serving(echo_server(endpoint)) as running:
        client = echo_client(running.channel)
        assert await client(Context(), "hello") == "HELLO"
        assert await client(Context(), "again") == "AGAIN"

    first = seen[0]
    assert first[METHOD] == PATH
    assert first[PEER].startswith("ipv4:127.0.0.1:")
    assert "user-agent" in first[METADATA]
    assert first[REQUEST_ID]  # generated when the client sent none
    assert seen[1][REQUEST_ID] != first[REQUEST_ID]
    assert first.deadline is None  # the client sent no deadline


async def test_incoming_request_id_is_kept() -> None:
    seen: list[str] = []
    rid_key: Key[str] = Key("rid")

    async def endpoint(ctx: Context, s: str) -> str:
        seen.append(ctx[REQUEST_ID])
        return s

    async with serving(echo_server(endpoint)) as running:
        client = echo_client(running.channel, before=[context_to_metadata(rid_key, "X-Request-Id")])
        await client(Context().with_value(rid_key, "req-42"), "x")
    assert seen == ["req-42"]


@pytest.mark.parametrize("code", ERROR_CODES, ids=lambda c: c.name)
async def test_every_code_round_trips(code: Code) -> None:
    message = f"failed with {code.name.lower()}"

    async def endpoint(ctx: Context, s: str) -> str:
        raise from_code(code, message)

    async with serving(echo_server(endpoint)) as running:
        with pytest.raises(KitError) as info:
            await echo_client(running.channel)(Context(), "x")
    assert type(info.value) is error_class(code)
    assert info.value.code is code
    assert info.value.message == message


async def test_error_headers_travel_as_trailing_metadata() -> None:
    async def endpoint(ctx: Context, s: str) -> str:
        raise Unauthenticated("token expired", headers={"WWW-Authenticate": 'Bearer error="x"'})

    async with serving(echo_server(endpoint)) as running:
        with pytest.raises(Unauthenticated) as info:
            await echo_client(running.channel)(Context(), "x")
    assert info.value.message == "token expired"
    headers = dict(info.value.headers or {})
    assert headers.pop("www-authenticate") == 'Bearer error="x"'
    assert set(headers) == {"x-request-id"}  # every response carries it


async def test_unexpected_exception_is_unknown_without_its_text() -> None:
    handled: list[BaseException] = []
    codes: list[Code] = []

    async def endpoint(ctx: Context, s: str) -> str:
        raise ValueError("db password is hunter2")

    server = echo_server(
        endpoint,
        error_handler=lambda ctx, exc: handled.append(exc),
        finalizer=[lambda ctx, code: codes.append(code)],
    )
    async with serving(server) as running:
        with pytest.raises(Unknown) as info:
            await echo_client(running.channel)(Context(), "x")
        # the raw status, as a non-kitpy client sees it
        raw = running.channel.unary_unary(
            PATH,
            request_serializer=StringValue.SerializeToString,
            response_deserializer=StringValue.FromString,
        )
        with pytest.raises(grpc.aio.AioRpcError) as raw_info:
            await raw(StringValue(value="x"))
    assert info.value.message == "unknown"
    assert raw_info.value.code() is grpc.StatusCode.UNKNOWN  # as grpc answers by itself
    assert "hunter2" not in (raw_info.value.details() or "")
    assert "hunter2" not in (raw_info.value.debug_error_string() or "")
    assert len(handled) == 2
    assert isinstance(handled[0], ValueError)
    assert handled[0].__traceback__ is not None
    assert codes == [Code.UNKNOWN, Code.UNKNOWN]


async def test_timeout_error_inside_endpoint_is_deadline_exceeded() -> None:
    async def endpoint(ctx: Context, s: str) -> str:
        raise TimeoutError("upstream took too long")

    async with serving(echo_server(endpoint)) as running:
        with pytest.raises(DeadlineExceeded) as info:
            await echo_client(running.channel)(Context(), "x")
    assert "upstream" not in info.value.message


async def test_custom_error_encoder() -> None:
    async def endpoint(ctx: Context, s: str) -> str:
        raise LookupError("missing")

    def encoder(ctx: Context, exc: BaseException) -> KitError:
        return NotFound("nothing here") if isinstance(exc, LookupError) else Internal()

    async with serving(echo_server(endpoint, error_encoder=encoder)) as running:
        with pytest.raises(NotFound, match="nothing here"):
            await echo_client(running.channel)(Context(), "x")


async def test_decoder_failure_is_invalid_argument() -> None:
    handled: list[BaseException] = []
    called: list[str] = []

    def decode(ctx: Context, message: StringValue) -> str:
        raise ValueError(f"bad value {message.value!r}")

    async def endpoint(ctx: Context, s: str) -> str:
        called.append(s)
        return s

    from kitpy.transport.grpc import Server

    server: Server[str, str, StringValue, StringValue] = Server(
        endpoint,
        decode,
        lambda ctx, s: StringValue(value=s),
        error_handler=lambda ctx, exc: handled.append(exc),
    )
    async with serving(server) as running:
        with pytest.raises(InvalidArgument) as info:
            await echo_client(running.channel)(Context(), "x")
    assert "bad value" not in info.value.message
    assert called == []
    assert isinstance(handled[0], InvalidArgument)  # what was sent, caused by the decoder's
    assert isinstance(handled[0].__cause__, ValueError)
    assert handled[0].__cause__.__traceback__ is not None


async def test_malformed_request_bytes_are_invalid_argument() -> None:
    called: list[str] = []

    async def endpoint(ctx: Context, s: str) -> str:
        called.append(s)
        return s

    async with serving(echo_server(endpoint)) as running:
        raw: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = running.channel.unary_unary(PATH)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await raw(b"\xff\xff\xff")
        assert await raw(StringValue(value="ok").SerializeToString()) == (
            StringValue(value="ok").SerializeToString()
        )
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == (
        "invalid request: the body is not a valid google.protobuf.StringValue"
    )
    assert called == ["ok"]


class FakeServicerContext:
    """Just what a Server uses of grpc.aio's context on a successful call."""

    def __init__(self) -> None:
        self.trailing: tuple[tuple[str, str | bytes], ...] = ()

    def set_trailing_metadata(self, metadata: tuple[tuple[str, str | bytes], ...]) -> None:
        self.trailing = metadata

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()

    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"

    def time_remaining(self) -> float | None:
        return None


async def test_a_server_registered_directly_parses_in_a_copy_on_its_one_path() -> None:
    codes: list[Code] = []
    handled: list[BaseException] = []
    server = echo_server(
        upper,
        finalizer=[lambda ctx, code: codes.append(code)],
        error_handler=lambda ctx, exc: handled.append(exc),
    )
    async with serving(server) as running:
        raw: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = running.channel.unary_unary(PATH)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await raw(b"\xff\xff\xff")
        reply = await raw(StringValue(value="ok").SerializeToString())
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert StringValue.FromString(reply).value == "OK"
    # the unparseable call took the one error path: handler and finalizers saw it
    assert codes == [Code.INVALID_ARGUMENT, Code.OK]
    assert [type(exc) for exc in handled] == [InvalidArgument]
    assert (
        info.value.details()
        == "invalid request: the body is not a valid google.protobuf.StringValue"
    )
    # GrpcServer served a parsing copy; the object passed in still takes messages
    message = StringValue(value="direct")
    fake = cast("grpc.aio.ServicerContext[Any, Any]", FakeServicerContext())
    assert (await server(message, fake)).value == "DIRECT"


async def test_deadline_propagates_and_slow_endpoint_is_deadline_exceeded() -> None:
    remaining: list[float | None] = []
    cancelled = asyncio.Event()
    codes: list[Code] = []

    async def slow(ctx: Context, s: str) -> str:
        remaining.append(ctx.time_remaining())
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return s

    finalized = asyncio.Event()

    def finalizer(ctx: Context, code: Code) -> None:
        codes.append(code)
        finalized.set()

    server = echo_server(slow, finalizer=[finalizer])
    async with serving(server) as running:
        client = echo_client(running.channel)
        for _ in range(5):  # on a loaded machine the call may expire before the handler runs
            with pytest.raises(DeadlineExceeded):
                await client(Context().with_timeout(0.05), "x")
            if remaining:
                break
        async with asyncio.timeout(5):
            await cancelled.wait()  # grpc cancelled the server's endpoint
            await finalized.wait()
    budget = remaining[0]
    assert budget is not None
    # the client's 50 ms budget, less the trip; grpc-timeout is sent rounded *up* to a
    # whole unit (e.g. 49.9 ms as "50m"), so the server may see a hair more than 50 ms
    assert 0 <= budget <= most_a_budget_arrives_as(0.05)
    assert codes == [Code.DEADLINE_EXCEEDED]


async def test_expired_context_is_not_sent() -> None:
    calls: list[str] = []
    finals: list[BaseException | None] = []

    async def endpoint(ctx: Context, s: str) -> str:
        calls.append(s)
        return s

    async with serving(echo_server(endpoint)) as running:
        client = echo_client(running.channel, finalizer=[lambda ctx, exc: finals.append(exc)])
        expired = Context().with_timeout(0.0)
        with pytest.raises(DeadlineExceeded, match=r"before calling /test\.v1\.Echo/Call"):
            await client(expired, "x")
        assert await client(Context(), "y") == "y"
    assert calls == ["y"]
    assert isinstance(finals[0], DeadlineExceeded)
    assert finals[1] is None


async def test_expired_server_side_is_deadline_exceeded_code() -> None:
    async def endpoint(ctx: Context, s: str) -> str:
        raise DeadlineExceeded("server gave up")

    async with serving(echo_server(endpoint)) as running:
        with pytest.raises(DeadlineExceeded, match="server gave up"):
            await echo_client(running.channel)(Context().with_timeout(5), "x")


async def test_client_cancellation_cancels_server_endpoint() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()
    codes: list[Code] = []
    finals: list[BaseException | None] = []

    async def slow(ctx: Context, s: str) -> str:
        started.set()
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return s

    finalized = asyncio.Event()

    def finalizer(ctx: Context, code: Code) -> None:
        codes.append(code)
        finalized.set()

    server = echo_server(slow, finalizer=[finalizer])
    async with serving(server) as running:
        client = echo_client(running.channel, finalizer=[lambda ctx, exc: finals.append(exc)])
        task = asyncio.create_task(client(Context(), "x"))
        async with asyncio.timeout(5):
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await cancelled.wait()
            await finalized.wait()
    assert codes == [Code.CANCELLED]
    assert isinstance(finals[0], asyncio.CancelledError)


async def test_call_cancelled_by_a_closing_channel_is_unavailable() -> None:
    """Closing the channel under a call is not the caller's cancellation: it is UNAVAILABLE."""
    started = asyncio.Event()

    async def slow(ctx: Context, s: str) -> str:
        started.set()
        await asyncio.sleep(5)
        return s

    async with serving(echo_server(slow)) as running:
        channel = grpc.aio.insecure_channel(running.target)
        task = asyncio.create_task(echo_client(channel)(Context(), "x"))
        async with asyncio.timeout(5):
            await started.wait()
            await channel.close()  # no grace: grpc cancels the call in flight
            with pytest.raises(Unavailable, match="channel closed"):
                await task


async def test_metadata_in_and_out_including_binary() -> None:
    tenant: Key[str] = Key("tenant")
    trace: Key[bytes] = Key("trace")
    upstream: Key[str] = Key("upstream")
    checksum: Key[bytes] = Key("checksum")
    seen: dict[str, Any] = {}

    async def endpoint(ctx: Context, s: str) -> str:
        seen["tenant"] = ctx.get(tenant)
        seen["trace"] = ctx.get(trace)
        metadata: Metadata = ctx[METADATA]
        seen["metadata"] = dict(metadata)
        return s

    server = echo_server(
        endpoint,
        before=[metadata_to_context("x-tenant", tenant), metadata_to_context("x-trace-bin", trace)],
        after=[
            context_to_response_metadata(tenant, "x-upstream"),
            set_response_metadata("x-sum-bin", b"\x00\xff\x10", trailing=True),
        ],
    )
    async with serving(server) as running:
        client = echo_client(
            running.channel,
            before=[
                context_to_metadata(tenant, "X-Tenant"),
                context_to_metadata(trace, "x-trace-bin"),
            ],
            after=[
                response_metadata_to_context("x-upstream", upstream),
                response_metadata_to_context("x-sum-bin", checksum),
                lambda ctx, initial, trailing: seen.setdefault("ctx", ctx),
            ],
        )
        ctx = Context().with_value(tenant, "acme").with_value(trace, b"\x01\x02\xfe")
        assert await client(ctx, "x") == "x"
    assert seen["tenant"] == "acme"
    assert seen["trace"] == b"\x01\x02\xfe"
    assert seen["metadata"]["x-tenant"] == "acme"
    after_ctx: Context = seen["ctx"]
    assert after_ctx[upstream] == "acme"
    assert after_ctx[checksum] == b"\x00\xff\x10"


async def test_hook_order_on_server_and_client() -> None:
    order: list[str] = []

    def server_before(name: str) -> Any:
        def before(ctx: Context, metadata: Metadata) -> Context:
            order.append(f"server-before-{name}")
            return ctx

        return before

    def server_after(name: str) -> Any:
        def after(ctx: Context, initial: MutableMetadata, trailing: MutableMetadata) -> Context:
            order.append(f"server-after-{name}")
            return ctx

        return after

    async def endpoint(ctx: Context, s: str) -> str:
        order.append("endpoint")
        return s

    def client_before(ctx: Context, metadata: MutableMetadata) -> Context:
        order.append("client-before")
        return ctx

    def client_after(ctx: Context, initial: Metadata, trailing: Metadata) -> Context:
        order.append("client-after")
        return ctx

    server = echo_server(
        endpoint,
        before=[server_before("1"), server_before("2")],
        after=[server_after("1"), server_after("2")],
        finalizer=[lambda ctx, code: order.append(f"server-finalizer-{code.name}")],
    )
    async with serving(server) as running:
        client = echo_client(
            running.channel,
            before=[client_before],
            after=[client_after],
            finalizer=[lambda ctx, exc: order.append(f"client-finalizer-{exc}")],
        )
        await client(Context(), "x")
    assert order == [
        "client-before",
        "server-before-1",
        "server-before-2",
        "endpoint",
        "server-after-1",
        "server-after-2",
        "server-finalizer-OK",
        "client-after",
        "client-finalizer-None",
    ]


async def test_before_error_is_mapped_and_finalizer_runs() -> None:
    codes: list[Code] = []

    def reject(ctx: Context, metadata: Metadata) -> Context:
        raise Unauthenticated("no token")

    server = echo_server(upper, before=[reject], finalizer=[lambda c, code: codes.append(code)])
    async with serving(server) as running:
        with pytest.raises(Unauthenticated, match="no token"):
            await echo_client(running.channel)(Context(), "x")
    assert codes == [Code.UNAUTHENTICATED]


async def test_unreachable_server_is_unavailable() -> None:
    async with serving(echo_server(upper)) as running:
        port = running.port
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")  # nothing listens there now
    try:
        with pytest.raises(Unavailable):
            await echo_client(channel)(Context().with_timeout(5), "x")
    finally:
        await channel.close()


async def test_client_is_an_endpoint_that_middleware_wraps() -> None:
    seen: list[str] = []

    def record(next: Endpoint[str, str]) -> Endpoint[str, str]:
        async def endpoint(ctx: Context, request: str) -> str:
            response = await next(ctx, request)
            seen.append(f"{request}->{response}")
            return response

        return endpoint

    async with serving(echo_server(upper)) as running:
        wrapped = chain(record)(echo_client(running.channel))
        assert await wrapped(Context(), "go") == "GO"
    assert seen == ["go->GO"]


def send_request_id(ctx: Context, metadata: MutableMetadata) -> Context:
    metadata["x-request-id"] = "r-9"
    return ctx


async def test_the_context_reads_the_same_during_and_after_the_call() -> None:
    seen: list[tuple[str, Context]] = []

    async def record(ctx: Context, s: str) -> str:
        seen.append(("endpoint", ctx))
        return s

    server = echo_server(record, finalizer=[lambda ctx, code: seen.append(("finalizer", ctx))])
    async with serving(server) as running:
        client = echo_client(running.channel)
        await client(Context(), "no id")
        await echo_client(running.channel, before=[send_request_id])(Context(), "with id")
        await client(Context(), "no id again")
    await asyncio.sleep(0.05)  # every call is over: the Contexts must still read fully
    ids = []
    for i in range(0, len(seen), 2):
        (_, endpoint_ctx), (_, finalizer_ctx) = seen[i], seen[i + 1]
        child = endpoint_ctx.with_timeout(1.0)
        assert endpoint_ctx[METHOD] == PATH
        assert endpoint_ctx[PEER].startswith("ipv4:127.0.0.1:")
        assert "user-agent" in endpoint_ctx[METADATA]
        assert endpoint_ctx[REQUEST_ID] == child[REQUEST_ID] == finalizer_ctx[REQUEST_ID]
        ids.append(endpoint_ctx[REQUEST_ID])
    assert ids[1] == "r-9"
    assert seen[2][1][METADATA]["x-request-id"] == "r-9"
    assert len(set(ids)) == 3, ids


async def test_a_bare_root_context_gives_its_clock_to_every_call() -> None:
    # every call's Context is made from the root: it keeps the root's clock
    seen: list[Context] = []

    async def record(ctx: Context, s: str) -> str:
        seen.append(ctx)
        return s

    def clock() -> float:
        return 1000.0

    root = Context(clock=clock)
    async with serving(echo_server(record, root=root)) as running:
        await echo_client(running.channel)(Context().with_timeout(30.0), "x")
        await echo_client(running.channel)(Context(), "y")
    timed, unbounded = seen
    assert timed.clock is clock
    assert timed.deadline is not None
    # on the root's clock; 25 s leaves the call 5 s to be scheduled on a loaded machine
    assert 1000.0 + 25.0 < timed.deadline <= 1000.0 + most_a_budget_arrives_as(30.0)
    assert timed.time_remaining() == timed.deadline - 1000.0
    assert unbounded.clock is clock
    assert unbounded.deadline is None
    assert timed[METHOD] == unbounded[METHOD] == PATH


async def test_a_root_context_with_values_and_a_deadline_is_kept() -> None:
    tenant: Key[str] = Key("tenant")
    seen: list[Context] = []

    async def record(ctx: Context, s: str) -> str:
        seen.append(ctx)
        return s

    root = Context().with_value(tenant, "acme").with_timeout(0.5)
    async with serving(echo_server(record, root=root)) as running:
        await echo_client(running.channel)(Context().with_timeout(30.0), "x")  # longer budget
        await echo_client(running.channel)(Context(), "y")  # no budget at all
    for ctx in seen:
        assert ctx[tenant] == "acme"
        assert ctx[METHOD] == PATH
        assert ctx.deadline is not None
        assert root.deadline is not None
        assert ctx.deadline <= root.deadline  # the root's, the earlier
