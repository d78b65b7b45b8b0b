"""The NATS transport against a real nats-server: request-reply, errors, deadlines, drain."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import nats
import nats.aio.client
import pytest
from nats.aio.msg import Msg

from kitpy import (
    OPERATION,
    REQUEST_ID,
    Context,
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    NotFound,
    Unavailable,
    Unknown,
    named,
)
from kitpy.context import ENDPOINT_ERROR, ENDPOINT_NAME
from kitpy.errors import Code
from kitpy.transport.nats import SUBJECT, Client, Publisher, Server, Subscription
from tests.conftest import Nats


@dataclass(frozen=True)
class Upper:
    s: str


def decode_upper(ctx: Context, msg: Msg) -> Upper:
    data = json.loads(msg.data)
    if not isinstance(data, dict) or not isinstance(data.get("s"), str):
        raise ValueError('expected {"s": <string>}')
    return Upper(data["s"])


def encode_json(ctx: Context, value: object) -> bytes:
    return json.dumps(value).encode()


def encode_upper(ctx: Context, request: Upper) -> bytes:
    return json.dumps({"s": request.s}).encode()


def decode_v(ctx: Context, body: bytes) -> str:
    value = json.loads(body)["v"]
    assert isinstance(value, str)
    return value


async def uppercase(ctx: Context, request: Upper) -> dict[str, str]:
    if not request.s:
        raise InvalidArgument("empty string")
    if request.s == "missing":
        raise NotFound("no such string", details={"s": "missing"})
    if request.s == "boom":
        raise RuntimeError("secret internals")
    if request.s == "slow":
        await asyncio.sleep(10)
    return {"v": request.s.upper()}


@pytest.fixture
async def nc(nats_server: Nats) -> AsyncIterator[nats.aio.client.Client]:
    conn = await nats.connect(nats_server.url, connect_timeout=2, allow_reconnect=False)
    yield conn
    await conn.close()


@pytest.fixture
def subject() -> str:
    return f"test.{uuid.uuid4().hex}.uppercase"


async def test_request_reply_carries_the_request_id_and_operation(
    nc: nats.aio.client.Client, subject: str
) -> None:
    seen: list[tuple[str, str, str]] = []

    async def endpoint(ctx: Context, request: Upper) -> dict[str, str]:
        seen.append((ctx[REQUEST_ID], ctx[OPERATION], ctx[SUBJECT]))
        return await uppercase(ctx, request)

    sub = await Subscription.start(nc, subject, Server(endpoint, decode_upper, encode_json))
    client = Client(nc, subject, encode_upper, decode_v)
    ctx = Context().with_value(REQUEST_ID, "req-42")
    assert await client(ctx.with_timeout(2), Upper("hello")) == "HELLO"
    assert seen == [("req-42", subject, subject)]
    reply = await nc.request(subject, b'{"s": "x"}', timeout=2)
    assert reply.headers is None  # a success carries only what after hooks add
    await sub.drain()


async def test_errors_arrive_as_the_same_kit_error_with_a_json_body(
    nc: nats.aio.client.Client, subject: str
) -> None:
    handled: list[BaseException] = []
    codes: list[Code] = []
    server = Server(
        uppercase, decode_upper, encode_json,
        error_handler=lambda ctx, exc: handled.append(exc),
        finalizer=[lambda ctx, code: codes.append(code)],
    )  # fmt: skip
    sub = await Subscription.start(nc, subject, server)
    client = Client(nc, subject, encode_upper, decode_v)
    ctx = Context().with_timeout(2)

    with pytest.raises(InvalidArgument, match="empty string"):
        await client(ctx, Upper(""))
    with pytest.raises(NotFound) as not_found:
        await client(ctx, Upper("missing"))
    assert not_found.value.details == {"s": "missing"}
    with pytest.raises(Unknown) as unknown:
        await client(ctx, Upper("boom"))
    assert "secret" not in unknown.value.message  # the exception's text stays in the server

    raw = await nc.request(subject, b'{"s": 1}', timeout=2)
    assert raw.headers is not None
    assert raw.headers["Kit-Code"] == "INVALID_ARGUMENT"
    body = json.loads(raw.data)
    assert body["error"]["code"] == "INVALID_ARGUMENT"
    assert "invalid message body" in body["error"]["message"]
    assert raw.headers["X-Request-Id"]  # an error reply carries its request id

    assert codes == [
        Code.INVALID_ARGUMENT, Code.NOT_FOUND, Code.UNKNOWN, Code.INVALID_ARGUMENT
    ]  # fmt: skip
    assert isinstance(handled[2], RuntimeError)  # the handler sees the real exception
    await sub.drain()


async def test_an_unencodable_reply_is_internal_and_the_handler_knows_who_failed(
    nc: nats.aio.client.Client, subject: str
) -> None:
    handled: list[tuple[str, bool | None, str | None]] = []

    async def unencodable(ctx: Context, request: Upper) -> object:
        if not request.s:
            raise InvalidArgument("empty string")
        return {"v": object()}  # json.dumps raises TypeError

    def handle(ctx: Context, exc: BaseException) -> None:
        handled.append((type(exc).__name__, ctx.get(ENDPOINT_ERROR), ctx.get(ENDPOINT_NAME)))

    server = Server(named("upper")(unencodable), decode_upper, encode_json, error_handler=handle)
    sub = await Subscription.start(nc, subject, server)
    client = Client(nc, subject, encode_upper, decode_v)
    with pytest.raises(Internal, match="could not encode the response"):
        await client(Context().with_timeout(2), Upper("x"))
    with pytest.raises(InvalidArgument):
        await client(Context().with_timeout(2), Upper(""))
    await nc.request(subject, b"{not json", timeout=2)
    assert handled == [
        ("Internal", False, "upper"),  # the Server's encoding step failed
        ("InvalidArgument", True, "upper"),  # the endpoint raised it
        ("InvalidArgument", False, "upper"),  # the Server's decoding step failed
    ]
    await sub.drain()


async def test_the_deadline_travels_and_an_expired_message_is_not_run(
    nc: nats.aio.client.Client, subject: str
) -> None:
    remaining: list[float | None] = []
    calls: list[str] = []

    async def endpoint(ctx: Context, request: Upper) -> dict[str, str]:
        remaining.append(ctx.time_remaining())
        calls.append(request.s)
        return await uppercase(ctx, request)

    sub = await Subscription.start(nc, subject, Server(endpoint, decode_upper, encode_json))
    client = Client(nc, subject, encode_upper, decode_v)
    assert await client(Context().with_timeout(1.5), Upper("a")) == "A"
    assert remaining[0] is not None
    assert 0.5 < remaining[0] <= 1.5
    with pytest.raises(DeadlineExceeded):
        await client(Context().with_timeout(0.2), Upper("slow"))

    reply = await nc.request(subject, b'{"s": "b"}', timeout=2, headers={"X-Timeout-Ms": "0"})
    assert reply.headers is not None
    assert reply.headers["Kit-Code"] == "DEADLINE_EXCEEDED"
    reply = await nc.request(subject, b'{"s": "b"}', timeout=2, headers={"X-Timeout-Ms": "soon"})
    assert reply.headers is not None
    assert reply.headers["Kit-Code"] == "INVALID_ARGUMENT"
    assert calls == ["a", "slow"]  # neither of the last two ran
    await sub.drain()


async def test_no_responder_is_unavailable(nc: nats.aio.client.Client, subject: str) -> None:
    client = Client(nc, subject, encode_upper, decode_v)
    with pytest.raises(Unavailable, match="no service answers"):
        await client(Context().with_timeout(2), Upper("x"))


async def test_a_queue_group_shares_the_work_and_drain_finishes_what_is_in_flight(
    nc: nats.aio.client.Client, subject: str
) -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    served: dict[str, int] = {"a": 0, "b": 0}

    def member(name: str) -> Server[Upper, dict[str, str]]:
        async def endpoint(ctx: Context, request: Upper) -> dict[str, str]:
            served[name] += 1
            if request.s == "hold":
                started.set()
                await release.wait()
            return {"v": request.s.upper()}

        return Server(endpoint, decode_upper, encode_json)

    a = await Subscription.start(nc, subject, member("a"), queue="workers", max_in_flight=4)
    b = await Subscription.start(nc, subject, member("b"), queue="workers", max_in_flight=4)
    client = Client(nc, subject, encode_upper, decode_v)
    ctx = Context().with_timeout(5)
    results = await asyncio.gather(*(client(ctx, Upper(f"m{i}")) for i in range(40)))
    assert results == [f"M{i}" for i in range(40)]
    assert served["a"] + served["b"] == 40
    assert served["a"] > 0
    assert served["b"] > 0  # both members took part

    await b.drain()
    held = asyncio.create_task(client(ctx, Upper("hold")))
    async with asyncio.timeout(5):
        await started.wait()
    assert a.in_flight == 1
    draining = asyncio.create_task(a.drain(grace=5))
    await asyncio.sleep(0.05)
    assert not draining.done()  # waits for the handler in flight
    release.set()
    assert await held == "HOLD"  # its reply was still sent
    async with asyncio.timeout(5):
        await draining


async def test_publish_is_fire_and_forget_and_the_server_sends_no_reply(
    nc: nats.aio.client.Client, subject: str
) -> None:
    got: list[str] = []
    done = asyncio.Event()

    async def endpoint(ctx: Context, request: Upper) -> dict[str, str]:
        got.append(request.s)
        done.set()
        return {"v": request.s.upper()}

    sub = await Subscription.start(nc, subject, Server(endpoint, decode_upper, encode_json))
    publish = Publisher(nc, subject, encode_upper)
    await publish(Context(), Upper("event"))
    async with asyncio.timeout(5):
        await done.wait()
    assert got == ["event"]
    await sub.drain()
