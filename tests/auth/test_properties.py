"""Property tests: any string as a token is a 401 / UNAUTHENTICATED, never a 500, never a call.

Directly against the parser with arbitrary text, and over a real HTTP server and a
real gRPC server with arbitrary printable header/metadata values.  The servers run
on an event loop in a background thread so hypothesis can drive them from a plain
test with stdlib ``http.client`` and a blocking gRPC channel.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
import pytest
from aiohttp import web
from google.protobuf.wrappers_pb2 import StringValue
from hypothesis import given, settings
from hypothesis import strategies as st

from kitpy import Context
from kitpy.auth import CLAIMS, TOKEN, errors, grpc_to_context, http_to_context
from kitpy.auth.jwt import KeySet, jwt_parser
from kitpy.auth.jwt.parser import JWTParser
from kitpy.transport.grpc import Server as GrpcServer
from kitpy.transport.http import Server, decode_json, encode_json
from tests.auth.tokens import ALGORITHMS, AUDIENCE, ISSUER, KID, Algo, good_claims

PRINTABLE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=600)
TOKENISH = st.from_regex(r"\A[A-Za-z0-9_\-=+/]{0,60}(\.[A-Za-z0-9_\-=+/]{0,60}){0,4}\Z")
SETTINGS = settings(max_examples=100, deadline=None)


def make_parser(a: Algo) -> JWTParser[dict[str, Any]]:
    return jwt_parser(
        KeySet({KID: a.public}), algorithms=[a.name], audience=AUDIENCE, issuer=ISSUER
    )


@pytest.fixture(scope="module")
def parsers(algos: dict[str, Algo]) -> dict[str, JWTParser[dict[str, Any]]]:
    return {name: make_parser(a) for name, a in algos.items()}


async def _call(endpoint: Any, token: str) -> None:
    await endpoint(Context().with_value(TOKEN, token), None)


async def _never_called(ctx: Context, request: Any) -> None:
    raise AssertionError("the endpoint ran")


@SETTINGS
@given(name=st.sampled_from(ALGORITHMS), token=st.one_of(st.text(max_size=2000), TOKENISH))
def test_any_string_is_rejected_by_the_parser(
    parsers: dict[str, JWTParser[dict[str, Any]]], name: str, token: str
) -> None:
    endpoint = parsers[name](_never_called)
    with pytest.raises(errors.TokenError):
        asyncio.run(_call(endpoint, token))


@SETTINGS
@given(name=st.sampled_from(ALGORITHMS), data=st.data())
def test_any_single_character_change_is_rejected(
    algos: dict[str, Algo],
    parsers: dict[str, JWTParser[dict[str, Any]]],
    name: str,
    data: st.DataObject,
) -> None:
    token = algos[name].sign(good_claims())
    # any change before the signature's last character (whose low bits are base64 padding)
    index = data.draw(st.integers(0, len(token) - 2))
    char = data.draw(st.characters(min_codepoint=0x21, max_codepoint=0x7E))
    if char == token[index]:
        return
    mutated = token[:index] + char + token[index + 1 :]
    endpoint = parsers[name](_never_called)
    with pytest.raises(errors.TokenError):
        asyncio.run(_call(endpoint, mutated))


# -- over the wire ----------------------------------------------------------------------


@dataclass
class Servers:
    http_port: int = 0
    grpc_port: int = 0
    calls: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def servers(algos: dict[str, Algo]) -> Iterator[Servers]:
    """HTTP and gRPC servers guarded by an RS256 parser, on a loop in a background thread."""
    a = algos["RS256"]
    state = Servers()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def endpoint(ctx: Context, request: Any) -> str:
        state.calls.append(ctx[CLAIMS]["sub"])
        return "ok"

    async def start() -> tuple[web.AppRunner, grpc.aio.Server]:
        parser = make_parser(a)
        app = web.Application()
        app.router.add_post(
            "/echo",
            Server(parser(endpoint), decode_json(dict), encode_json, before=[http_to_context]),
        )
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        state.http_port = runner.addresses[0][1]
        kit: GrpcServer[Any, Any, StringValue, StringValue] = GrpcServer(
            parser(endpoint), lambda ctx, m: m.value, lambda ctx, r: StringValue(value=r),
            before=[grpc_to_context],
        )  # fmt: skip

        async def handler(message: StringValue, context: Any) -> StringValue:
            return await kit(message, context)

        server = grpc.aio.server()
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "kitpy.test.Auth",
                    {
                        "Echo": grpc.unary_unary_rpc_method_handler(
                            handler,
                            request_deserializer=StringValue.FromString,
                            response_serializer=StringValue.SerializeToString,
                        )
                    },
                ),
            )
        )
        state.grpc_port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return runner, server

    runner, grpc_server = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    try:
        yield state
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        asyncio.run_coroutine_threadsafe(grpc_server.stop(None), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


@SETTINGS
@given(token=st.one_of(PRINTABLE, TOKENISH))
def test_any_header_value_is_401_over_http(servers: Servers, token: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", servers.http_port, timeout=10)
    try:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        conn.request("POST", "/echo", body=b"{}", headers=headers)
        response = conn.getresponse()
        body = json.loads(response.read())
    finally:
        conn.close()
    assert response.status == 401
    assert body["error"]["code"] == "UNAUTHENTICATED"
    assert servers.calls == []


@pytest.fixture(scope="module")
def grpc_echo(servers: Servers) -> Iterator[Any]:
    channel = grpc.insecure_channel(f"127.0.0.1:{servers.grpc_port}")
    yield channel.unary_unary(
        "/kitpy.test.Auth/Echo",
        request_serializer=StringValue.SerializeToString,
        response_deserializer=StringValue.FromString,
    )
    channel.close()


@SETTINGS
@given(token=st.one_of(PRINTABLE, TOKENISH))
def test_any_metadata_value_is_unauthenticated_over_grpc(
    servers: Servers, grpc_echo: Any, token: str
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        grpc_echo(
            StringValue(value="x"), metadata=(("authorization", f"Bearer {token}"),), timeout=10
        )
    assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert servers.calls == []
