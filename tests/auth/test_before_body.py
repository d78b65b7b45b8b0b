"""Authentication before the body, on real sockets: HTTP, gRPC, NATS Servers with ``authenticate``.

The attack: with the JWT parser as endpoint middleware, the request body is
decoded before the token is checked, so an anonymous caller gets 400 / 413 /
415 (and the decoder's words about the schema) instead of 401.  With
``authenticate=parser.authenticate`` the Server checks the caller first: an
anonymous request is 401 / UNAUTHENTICATED whatever its body, the decoder is
never run, and the same request with a valid token gets the precise 4xx.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import grpc
import grpc.aio
import jwt
import nats
import pytest
from aiohttp import web
from google.protobuf.wrappers_pb2 import StringValue
from multidict import CIMultiDict
from nats.aio.msg import Msg

from kitpy import Context
from kitpy.auth import CLAIMS, grpc_to_context, http_to_context, message_to_context
from kitpy.auth.jwt import JWTParser, jwt_parser
from kitpy.transport.grpc import Server as GrpcKitServer
from kitpy.transport.http import DEFAULT_MAX_BODY_SIZE, Server, decode_json, encode_json
from kitpy.transport.nats import Server as NatsServer
from kitpy.transport.nats import Subscription
from tests.conftest import Nats
from tests.transport.grpc.harness import PATH, echo_server, serving

SECRET = b"a-before-the-body-secret-32-bytes!!"
AUDIENCE, ISSUER = "orders", "https://auth.test"


def token(**claims: Any) -> str:
    now = int(time.time())
    base: dict[str, Any] = {"sub": "ada", "aud": AUDIENCE, "iss": ISSUER, "exp": now + 600}
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, SECRET, algorithm="HS256")


def parser() -> JWTParser[dict[str, Any]]:
    return jwt_parser(SECRET, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)


@dataclass(frozen=True)
class Order:
    item: str
    quantity: int


@dataclass
class Calls:
    """What ran on the server: decoder and endpoint calls, and the claims the endpoint saw."""

    decoded: int = 0
    served: list[dict[str, Any]] = field(default_factory=list)


# -- HTTP -------------------------------------------------------------------------


@dataclass
class Http:
    url: str
    calls: Calls


@pytest.fixture
async def http() -> AsyncIterator[Http]:
    calls = Calls()
    decode = decode_json(Order)

    async def counting_decode(ctx: Context, request: web.Request) -> Order:
        calls.decoded += 1
        return await decode(ctx, request)

    async def place(ctx: Context, order: Order) -> dict[str, str]:
        calls.served.append(ctx[CLAIMS])
        return {"ok": order.item}

    guard = parser()
    app = web.Application()  # aiohttp's own client_max_size (1 MiB) is not what answers here
    app.router.add_post(
        "/orders",
        Server(
            place, counting_decode, encode_json,
            before=[http_to_context], authenticate=guard.authenticate,
        ),
    )  # fmt: skip
    # the attack, reproduced: the same route with the parser as middleware reads the body first
    app.router.add_post(
        "/legacy", Server(guard(place), counting_decode, encode_json, before=[http_to_context])
    )
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield Http(f"http://127.0.0.1:{runner.addresses[0][1]}", calls)
    finally:
        await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:
        yield s


MALFORMED = (b'{"item": "tea", "quantity": ', "application/json")
OVERSIZED = (b'{"item": "' + b"x" * (2 * 1024 * 1024) + b'", "quantity": 1}', "application/json")
WRONG_TYPE = (b'{"item": "tea", "quantity": 1}', "text/plain")
BODIES = {"malformed_json": MALFORMED, "two_mib": OVERSIZED, "wrong_content_type": WRONG_TYPE}
WITH_TOKEN = {"malformed_json": 400, "two_mib": 413, "wrong_content_type": 415}


async def send(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    content_type: str,
    authorization: list[str] | None = None,
) -> tuple[int, dict[str, Any], CIMultiDict[str]]:
    headers = CIMultiDict([("Content-Type", content_type)])
    for value in authorization or ():
        headers.add("Authorization", value)
    async with session.post(url, data=body, headers=headers) as response:
        return response.status, json.loads(await response.read()), CIMultiDict(response.headers)


def test_the_oversized_body_is_over_the_default_limit() -> None:
    assert len(OVERSIZED[0]) > DEFAULT_MAX_BODY_SIZE


@pytest.mark.parametrize("kind", list(BODIES))
async def test_an_anonymous_request_is_401_whatever_its_body(
    http: Http, session: aiohttp.ClientSession, kind: str
) -> None:
    body, content_type = BODIES[kind]
    status, error, headers = await send(session, f"{http.url}/orders", body, content_type)
    assert status == 401
    assert error["error"]["code"] == "UNAUTHENTICATED"
    assert error["error"]["message"] == "missing bearer token"  # nothing about the schema
    assert headers["WWW-Authenticate"] == "Bearer"
    assert http.calls.decoded == 0  # the body was never read
    assert http.calls.served == []


@pytest.mark.parametrize("kind", list(BODIES))
async def test_a_bad_token_is_401_before_the_body_too(
    http: Http, session: aiohttp.ClientSession, kind: str
) -> None:
    body, content_type = BODIES[kind]
    expired = f"Bearer {token(exp=int(time.time()) - 60)}"
    status, error, _ = await send(session, f"{http.url}/orders", body, content_type, [expired])
    assert (status, error["error"]["message"]) == (401, "token has expired")
    assert http.calls.decoded == 0


@pytest.mark.parametrize("kind", list(BODIES))
async def test_with_a_valid_token_the_same_request_gets_its_precise_4xx(
    http: Http, session: aiohttp.ClientSession, kind: str
) -> None:
    body, content_type = BODIES[kind]
    bearer = [f"Bearer {token()}"]
    status, error, _ = await send(session, f"{http.url}/orders", body, content_type, bearer)
    assert status == WITH_TOKEN[kind]
    assert error["error"]["code"] == "INVALID_ARGUMENT"
    assert http.calls.decoded == 1
    assert http.calls.served == []


async def test_the_endpoint_gets_the_claims_authenticate_returned(
    http: Http, session: aiohttp.ClientSession
) -> None:
    body = b'{"item": "tea", "quantity": 1}'
    bearer = [f"Bearer {token()}"]
    status, reply, _ = await send(session, f"{http.url}/orders", body, "application/json", bearer)
    assert (status, reply) == (200, {"ok": "tea"})
    assert [claims["sub"] for claims in http.calls.served] == ["ada"]


async def test_with_the_parser_as_middleware_the_body_speaks_first(
    http: Http, session: aiohttp.ClientSession
) -> None:
    """The attack the option defends against: without it, an anonymous caller gets 400/413/415."""
    for kind, (body, content_type) in BODIES.items():
        status, _, _ = await send(session, f"{http.url}/legacy", body, content_type)
        assert status == WITH_TOKEN[kind], kind
    assert http.calls.decoded == 3


# -- duplicate Authorization over HTTP -------------------------------------------


async def test_two_authorization_headers_are_refused(
    http: Http, session: aiohttp.ClientSession
) -> None:
    body = b'{"item": "tea", "quantity": 1}'
    good = f"Bearer {token()}"
    for pair in ([good, good], [good, "Basic YWRhOnB3"], ["Basic YWRhOnB3", good]):
        status, error, headers = await send(
            session, f"{http.url}/orders", body, "application/json", pair
        )
        assert status == 401, pair
        assert error["error"]["message"] == "more than one Authorization header"
        assert error["error"]["details"] == {"reason": "duplicate_authorization"}
        assert headers["WWW-Authenticate"] == 'Bearer error="invalid_request"'
    assert http.calls.served == []
    status, _, _ = await send(session, f"{http.url}/orders", body, "application/json", [good])
    assert status == 200  # the control: one header is served


# -- gRPC -------------------------------------------------------------------------


def picky_decode(ctx: Context, message: StringValue) -> str:
    if message.value == "reject me":
        raise ValueError("the decoder's own words about the schema")
    return message.value


async def test_grpc_an_anonymous_call_is_unauthenticated_whatever_its_message() -> None:
    calls = Calls()

    async def echo(ctx: Context, s: str) -> str:
        calls.served.append(ctx[CLAIMS])
        return s.upper()

    kit: GrpcKitServer[str, str, Any, Any] = GrpcKitServer(
        echo, picky_decode, lambda ctx, r: StringValue(value=r), method=PATH,
        before=[grpc_to_context], authenticate=parser().authenticate,
    )  # fmt: skip
    async with serving(kit) as running:
        raw: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = running.channel.unary_unary(PATH)
        rejected = StringValue(value="reject me").SerializeToString()
        unparseable = b"\xff\xff\xff"
        for message in (rejected, unparseable):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await raw(message, timeout=5)
            assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
            assert info.value.details() == "missing bearer token"
        signed = (("authorization", f"Bearer {token()}"),)
        for message in (rejected, unparseable):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await raw(message, metadata=signed, timeout=5)
            assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        ok = await raw(StringValue(value="hi").SerializeToString(), metadata=signed, timeout=5)
        assert StringValue.FromString(ok).value == "HI"
    assert [claims["sub"] for claims in calls.served] == ["ada"]


async def test_grpc_two_authorization_entries_are_unauthenticated() -> None:
    served: list[str] = []

    async def echo(ctx: Context, s: str) -> str:
        served.append(s)
        return s

    kit = echo_server(echo, before=[grpc_to_context], authenticate=parser().authenticate)
    async with serving(kit) as running:
        raw: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = running.channel.unary_unary(PATH)
        message = StringValue(value="hi").SerializeToString()
        good = f"Bearer {token()}"
        other = f"Bearer {token(sub='mallory')}"
        for pairs in ([good, good], [good, other], [good, "Basic YWRhOnB3"]):
            metadata = tuple(("authorization", value) for value in pairs)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await raw(message, metadata=metadata, timeout=5)
            assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
            assert info.value.details() == "more than one Authorization header"
            trailing = dict(info.value.trailing_metadata() or ())
            assert trailing["www-authenticate"] == 'Bearer error="invalid_request"'
        assert served == []
        await raw(message, metadata=(("authorization", good),), timeout=5)  # the control
        assert served == ["hi"]


# -- NATS (the messaging Server) --------------------------------------------------


async def test_nats_an_anonymous_message_is_unauthenticated_before_decoding(
    nats_server: Nats,
) -> None:
    decoded: list[bytes] = []

    def decode(ctx: Context, msg: Msg) -> str:
        decoded.append(msg.data)
        value = json.loads(msg.data)["s"]
        assert isinstance(value, str)
        return value

    async def upper(ctx: Context, s: str) -> dict[str, str]:
        return {"v": s.upper(), "who": ctx[CLAIMS]["sub"]}

    server = NatsServer(
        upper, decode, lambda ctx, r: json.dumps(r).encode(),
        before=[message_to_context], authenticate=parser().authenticate,
    )  # fmt: skip
    subject = f"test.{uuid.uuid4().hex}.upper"
    nc = await nats.connect(nats_server.url, connect_timeout=2, allow_reconnect=False)
    try:
        sub = await Subscription.start(nc, subject, server)
        anonymous = await nc.request(subject, b'{"s": ', timeout=5)
        assert anonymous.headers is not None
        assert anonymous.headers["Kit-Code"] == "UNAUTHENTICATED"
        assert json.loads(anonymous.data)["error"]["message"] == "missing bearer token"
        assert decoded == []
        signed = {"Authorization": f"Bearer {token()}"}
        bad_body = await nc.request(subject, b'{"s": ', headers=signed, timeout=5)
        assert bad_body.headers is not None
        assert bad_body.headers["Kit-Code"] == "INVALID_ARGUMENT"
        good = await nc.request(subject, b'{"s": "hi"}', headers=signed, timeout=5)
        assert json.loads(good.data) == {"v": "HI", "who": "ada"}
        await sub.drain()
    finally:
        await nc.close()
