"""The Connect gateway (kitpy.gateway.connect) on real sockets.

Upstreams are real grpc.aio servers on 127.0.0.1: examples/stringsvc's (generated
modules, server reflection) and ``test.v1.EchoService``, a tiny service on generic
handlers whose descriptors exist only as a FileDescriptorSet built here (echo, a slow
method, a failing one with rich error details).  The gateway is a real aiohttp app
on start_app; callers are plain aiohttp, curl, and the ``connect-python`` client
(``connectrpc``), which no one here wrote.  Every wait is bounded: client sessions
have a 10 s total timeout, Connect clients a timeout_ms, curl ``--max-time``.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import grpc
import grpc.aio
import pytest
from aiohttp import web
from connectrpc.client import ConnectClient, ResponseMetadata
from connectrpc.code import Code as ConnectCode
from connectrpc.errors import ConnectError
from connectrpc.method import IdempotencyLevel, MethodInfo
from google.protobuf import any_pb2, descriptor_pb2, json_format
from google.protobuf.message import Message
from google.protobuf.wrappers_pb2 import StringValue
from multidict import CIMultiDictProxy
from yarl import URL

from examples.stringsvc.endpoints import make_endpoints
from examples.stringsvc.pb import stringsvc_pb2 as pb
from examples.stringsvc.service import BasicStringService
from examples.stringsvc.transport_grpc import start_grpc_server
from kitpy.context import Context
from kitpy.errors import Code, DeadlineExceeded, Unavailable
from kitpy.gateway.connect import connect_handler
from kitpy.gateway.connect_errors import connect_code, connect_status, metadata_headers
from kitpy.gateway.descriptors import (
    Descriptors,
    ProtoMethod,
    ReflectionDescriptors,
    StaticDescriptors,
)
from kitpy.gateway.grpc_upstream import UnaryCall, forward_headers, grpc_upstream
from kitpy.transport.http import RunningApp, start_app
from tests.servers import free_port

UPPERCASE = "stringsvc.v1.StringService/Uppercase"
JSON = {"Content-Type": "application/json"}
PROTO = {"Content-Type": "application/proto"}


# -- test.v1.EchoService: descriptors from a FileDescriptorSet, handlers on bytes ------


def echo_descriptor_set() -> bytes:
    """A FileDescriptorSet for test/echo.proto, as ``protoc --descriptor_set_out`` writes one."""
    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="test/echo.proto", package="test.v1")
    file.syntax = "proto3"
    message = file.message_type.add(name="EchoMessage")
    for name, json_name, number, kind, label in [
        ("user_name", "userName", 1, field.TYPE_STRING, field.LABEL_OPTIONAL),
        ("count", "count", 2, field.TYPE_INT64, field.LABEL_OPTIONAL),
        ("tags", "tags", 3, field.TYPE_STRING, field.LABEL_REPEATED),
    ]:
        message.field.add(name=name, json_name=json_name, number=number, type=kind, label=label)
    service = file.service.add(name="EchoService")
    for method in ("Echo", "Slow", "Fail", "Ping"):
        service.method.add(
            name=method, input_type=".test.v1.EchoMessage", output_type=".test.v1.EchoMessage"
        )
    service.method[3].options.idempotency_level = descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS
    return descriptor_pb2.FileDescriptorSet(file=[file]).SerializeToString()


ECHO_SET = echo_descriptor_set()
ECHO_DESCRIPTORS = StaticDescriptors.from_descriptor_set(ECHO_SET)
_ECHO = ECHO_DESCRIPTORS.get("test.v1.EchoService/Echo")
assert _ECHO is not None
EchoMessage = _ECHO.request


def _field(number: int, data: bytes) -> bytes:
    assert len(data) < 128
    return bytes([number << 3 | 2, len(data)]) + data


def rpc_status(code: int, message: str, detail: Message) -> bytes:
    """A serialized google.rpc.Status with one detail, as rich-error servers send it."""
    packed = any_pb2.Any()
    packed.Pack(detail)
    return bytes([0x08, code]) + _field(2, message.encode()) + _field(3, packed.SerializeToString())


async def echo(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    """Echo the message; the caller's ``x-*`` metadata comes back as ``echo-x-*`` headers."""
    seen = [(f"echo-{key}", value) for key, value in context.invocation_metadata() or ()]
    await context.send_initial_metadata([(k, v) for k, v in seen if k.startswith("echo-x-")])
    return request


async def slow(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    await asyncio.sleep(10)
    return request


async def fail(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    """Fail with the code in ``count`` and the message in ``user_name``, with rich details."""
    fields = json_format.MessageToDict(EchoMessage.FromString(request))
    text = str(fields.get("userName", ""))
    code = next(c for c in grpc.StatusCode if c.value[0] == int(fields.get("count", 2)))
    details = rpc_status(code.value[0], text, StringValue(value="why"))
    await context.abort(
        code,
        text,
        trailing_metadata=(("grpc-status-details-bin", details), ("x-trace", "t-1")),
    )
    raise AssertionError("abort returns by raising")


# -- the rig ------------------------------------------------------------------------


@dataclass
class Rig:
    """Starts upstreams and gateways for one test and stops them all after it."""

    session: aiohttp.ClientSession
    stops: list[Callable[[], Awaitable[Any]]]

    async def stringsvc(self) -> int:
        server, port = await start_grpc_server(make_endpoints(BasicStringService()), port=0)
        self.stops.append(lambda: server.stop(grace=0.5))
        return port

    async def echo_service(self) -> int:
        server = grpc.aio.server()
        handlers: dict[str, grpc.RpcMethodHandler[bytes, bytes]] = {
            "Echo": grpc.unary_unary_rpc_method_handler(echo),
            "Slow": grpc.unary_unary_rpc_method_handler(slow),
            "Fail": grpc.unary_unary_rpc_method_handler(fail),
            "Ping": grpc.unary_unary_rpc_method_handler(echo),
        }
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("test.v1.EchoService", handlers),)
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self.stops.append(lambda: server.stop(grace=0))
        return port

    def channel(self, port: int) -> grpc.aio.Channel:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        self.stops.append(channel.close)
        return channel

    async def gateway(
        self,
        channel: grpc.aio.Channel,
        descriptors: Descriptors,
        *,
        runner_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> URL:
        app = web.Application()
        app.router.add_route(
            "*", "/{service}/{method}", connect_handler(channel, descriptors, **options)
        )
        running: RunningApp = await start_app(
            app, host="127.0.0.1", port=0, grace_period=1.0, **(runner_options or {})
        )
        self.stops.append(running.stop)
        return running.url

    async def post(
        self, url: URL, method: str, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, CIMultiDictProxy[str], bytes]:
        async with self.session.post(url / method, data=body, headers=headers or JSON) as resp:
            return resp.status, resp.headers, await resp.read()


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        rig = Rig(session, [])
        yield rig
        for stop in reversed(rig.stops):
            async with asyncio.timeout(5):
                await stop()


async def stringsvc_gateway(rig: Rig, **options: Any) -> URL:
    channel = rig.channel(await rig.stringsvc())
    return await rig.gateway(channel, StaticDescriptors.from_modules(pb), **options)


def connect_method(method: ProtoMethod) -> MethodInfo[Any, Any]:
    """connect-python's MethodInfo for a method the gateway serves (no generated stubs)."""
    service, _, name = method.name.partition("/")
    return MethodInfo(
        name=name,
        service_name=service,
        input=method.request,
        output=method.response,
        idempotency_level=IdempotencyLevel.UNKNOWN,
    )


UPPERCASE_INFO = MethodInfo(
    name="Uppercase",
    service_name="stringsvc.v1.StringService",
    input=pb.UppercaseRequest,
    output=pb.UppercaseResponse,
    idempotency_level=IdempotencyLevel.UNKNOWN,
)


def error(body: bytes) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(body)
    assert set(decoded) <= {"code", "message", "details"}, decoded
    return decoded


# -- calls that work ------------------------------------------------------------------


async def test_json_call_from_plain_aiohttp(rig: Rig) -> None:
    url = await stringsvc_gateway(rig)
    status, headers, body = await rig.post(url, UPPERCASE, b'{"s": "hello"}')
    assert (status, body) == (200, b'{"v":"HELLO"}')
    assert headers["Content-Type"] == "application/json"
    # the gateway's request id went upstream: stringsvc sends it back as a trailer
    assert headers["trailer-x-request-id"] == headers["X-Request-Id"]


async def test_binary_call(rig: Rig) -> None:
    url = await stringsvc_gateway(rig)
    request = pb.UppercaseRequest(s="hello").SerializeToString()
    status, headers, body = await rig.post(url, UPPERCASE, request, PROTO)
    assert status == 200
    assert headers["Content-Type"] == "application/proto"
    assert pb.UppercaseResponse.FromString(body).v == "HELLO"


async def test_json_follows_protobufs_json_mapping(rig: Rig) -> None:
    url = await rig.gateway(rig.channel(await rig.echo_service()), ECHO_DESCRIPTORS)
    # lowerCamelCase or the proto name in, unknown fields ignored, int64 as a string out
    body = b'{"user_name": "ann", "count": 7, "tags": ["a"], "unknownField": {"x": 1}}'
    status, _, reply = await rig.post(url, "test.v1.EchoService/Echo", body)
    assert status == 200, reply
    assert json.loads(reply) == {"userName": "ann", "count": "7", "tags": ["a"]}
    status, _, reply = await rig.post(url, "test.v1.EchoService/Echo", b"{}")
    assert (status, reply) == (200, b"{}")  # default values are left out, as protojson does


async def test_connect_python_client_json_and_binary(rig: Rig) -> None:
    url = str(await stringsvc_gateway(rig)).rstrip("/")
    for proto_json in (True, False):
        # connect-python sends gzip-compressed requests by default: the gateway must take them
        async with ConnectClient(url, proto_json=proto_json, timeout_ms=5000) as client:
            with ResponseMetadata() as meta:
                reply = await client.execute_unary(
                    request=pb.UppercaseRequest(s="hello"), method=UPPERCASE_INFO
                )
            assert reply == pb.UppercaseResponse(v="HELLO")
            assert meta.trailers().get("x-request-id") == meta.headers().get("x-request-id")
            with pytest.raises(ConnectError) as caught:
                await client.execute_unary(request=pb.UppercaseRequest(s=""), method=UPPERCASE_INFO)
            assert caught.value.code is ConnectCode.INVALID_ARGUMENT
            assert caught.value.message == "empty string"


async def test_curl_json(rig: Rig) -> None:
    curl = shutil.which("curl")
    assert curl is not None, "curl is installed on the test machines"
    url = await stringsvc_gateway(rig)
    proc = await asyncio.create_subprocess_exec(
        curl, "-s", "--max-time", "5", "-w", "\n%{http_code}",
        "-H", "Content-Type: application/json", "-d", '{"s": "hello"}',
        str(url / UPPERCASE),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(10):
        out, _ = await proc.communicate()
    body, _, status = out.decode().rpartition("\n")
    assert (status, json.loads(body)) == ("200", {"v": "HELLO"})


# -- descriptor sources ---------------------------------------------------------------


async def test_reflection_gives_what_generated_modules_give(rig: Rig) -> None:
    channel = rig.channel(await rig.stringsvc())
    static = await rig.gateway(channel, StaticDescriptors.from_modules(pb))
    reflection = ReflectionDescriptors(channel)
    reflected = await rig.gateway(channel, reflection)
    count = pb.CountRequest(s="héllo").SerializeToString()
    for method, body, headers in [
        (UPPERCASE, b'{"s": "hello"}', JSON),
        (UPPERCASE, b'{"s": ""}', JSON),
        ("stringsvc.v1.StringService/Count", b'{"s": "h\\u00e9llo"}', JSON),
        ("stringsvc.v1.StringService/Count", count, PROTO),
        ("stringsvc.v1.StringService/Nope", b"{}", JSON),
        ("stringsvc.v1.StringService/Tokens", b"{}", JSON),
        ("grpc.health.v1.Health/Check", b"{}", JSON),  # gRPC's own services are not exposed
    ]:
        a_status, _, a_body = await rig.post(static, method, body, headers)
        b_status, _, b_body = await rig.post(reflected, method, body, headers)
        assert (a_status, a_body) == (b_status, b_body), method
    found = await reflection.lookup("stringsvc.v1.StringService/Count")
    assert found is not None
    assert found.response.DESCRIPTOR.full_name == "stringsvc.v1.CountResponse"


async def test_reflection_reads_once_and_knows_what_is_not_served(rig: Rig) -> None:
    port = await rig.stringsvc()
    channel = rig.channel(port)
    reflection = ReflectionDescriptors(channel, timeout=2.0)
    assert await reflection.lookup(UPPERCASE) is not None
    await rig.stops.pop(0)()  # stop the upstream: answers now come from the cache
    method = await reflection.lookup("stringsvc.v1.StringService/Count")
    assert method is not None
    assert method.name == "stringsvc.v1.StringService/Count"
    assert await reflection.lookup("other.v1.Service/Call") is None  # not in the listed services
    # a method the cached service lacks is read again only after `refresh`
    reflection.refresh = 0.0
    with pytest.raises(Unavailable, match="could not read the descriptors"):
        await reflection.lookup("stringsvc.v1.StringService/Later")


async def test_reflection_upstream_down_is_unavailable(rig: Rig) -> None:
    channel = rig.channel(free_port())
    url = await rig.gateway(channel, ReflectionDescriptors(channel, timeout=2.0))
    status, _, body = await rig.post(url, UPPERCASE, b'{"s": "x"}')
    assert status == 503
    assert error(body)["code"] == "unavailable"


async def test_descriptor_set_from_a_file_and_idempotency(tmp_path: Any) -> None:
    path = tmp_path / "echo.binpb"
    path.write_bytes(ECHO_SET)
    descriptors = StaticDescriptors.from_descriptor_set(path, services=["test.v1.EchoService"])
    assert descriptors.names == tuple(
        f"test.v1.EchoService/{m}" for m in ("Echo", "Slow", "Fail", "Ping")
    )
    ping = await descriptors.lookup("test.v1.EchoService/Ping")
    echo_method = await descriptors.lookup("test.v1.EchoService/Echo")
    assert ping is not None
    assert echo_method is not None
    assert (ping.idempotency, ping.idempotent) == ("no_side_effects", True)
    assert (echo_method.idempotency, echo_method.idempotent) == ("unknown", False)
    with pytest.raises(ValueError, match="FileDescriptorSet"):
        StaticDescriptors.from_descriptor_set(b"\xff\xff\xff")


# -- bad input: Connect errors, never a 500 -------------------------------------------


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{", "Failed to load JSON"),
        (b'{"s": 5}', "Failed to parse s field"),
        (b'{"s": "a", "s": "b"}', "duplicate key"),
        (b"", "empty"),
        (b"[1]", "must be a JSON object"),
        (b'"x"', "must be a JSON object"),
        (b'{"s": "\xff"}', "invalid stringsvc.v1.UppercaseRequest"),
        (b"[" * 5000 + b"]" * 5000, "must be a JSON object"),
        (b'{"s": ' + b"[" * 5000 + b"]" * 5000 + b"}", "invalid stringsvc.v1.UppercaseRequest"),
    ],
)
async def test_malformed_json_is_invalid_argument(rig: Rig, body: bytes, says: str) -> None:
    url = await stringsvc_gateway(rig)
    status, headers, reply = await rig.post(url, UPPERCASE, body)
    assert status == 400
    assert headers["Content-Type"] == "application/json"
    assert error(reply)["code"] == "invalid_argument"
    assert says in error(reply)["message"]


async def test_malformed_binary_is_invalid_argument(rig: Rig) -> None:
    url = await stringsvc_gateway(rig)
    status, _, reply = await rig.post(url, UPPERCASE, b"\xff\xff\xff", PROTO)
    assert status == 400
    assert error(reply) == {
        "code": "invalid_argument",
        "message": "request body is not a valid binary stringsvc.v1.UppercaseRequest",
    }


async def test_unknown_and_streaming_methods_are_unimplemented(rig: Rig) -> None:
    url = await stringsvc_gateway(rig)
    status, _, reply = await rig.post(url, "stringsvc.v1.StringService/Nope", b"{}")
    assert status == 404
    assert error(reply) == {
        "code": "unimplemented",
        "message": "unknown method stringsvc.v1.StringService/Nope",
    }
    status, _, reply = await rig.post(url, "stringsvc.v1.StringService/Tokens", b"{}")
    assert (status, error(reply)["code"]) == (501, "unimplemented")
    nope = MethodInfo(
        name="Nope",
        service_name="stringsvc.v1.StringService",
        input=pb.UppercaseRequest,
        output=pb.UppercaseResponse,
        idempotency_level=IdempotencyLevel.UNKNOWN,
    )
    async with ConnectClient(str(url).rstrip("/"), timeout_ms=5000) as client:
        with pytest.raises(ConnectError) as caught:
            await client.execute_unary(request=pb.UppercaseRequest(s="x"), method=nope)
    assert caught.value.code is ConnectCode.UNIMPLEMENTED


async def test_protocol_refusals(rig: Rig) -> None:
    url = await stringsvc_gateway(rig)
    status, headers, reply = await rig.post(url, UPPERCASE, b"{}", {"Content-Type": "text/plain"})
    assert (status, headers["Accept-Post"]) == (415, "application/json, application/proto")
    assert error(reply)["code"] == "invalid_argument"
    streaming = {"Content-Type": "application/connect+json"}
    status, _, reply = await rig.post(url, UPPERCASE, b"{}", streaming)
    assert status == 415
    assert "streaming" in error(reply)["message"]
    async with rig.session.get(url / UPPERCASE) as resp:
        assert (resp.status, resp.headers["Allow"]) == (405, "POST")
        assert error(await resp.read())["code"] == "unimplemented"
    status, _, reply = await rig.post(
        url, UPPERCASE, b'{"s":"a"}', {**JSON, "Connect-Protocol-Version": "2"}
    )
    assert (status, error(reply)["code"]) == (400, "invalid_argument")
    status, _, reply = await rig.post(
        url, UPPERCASE, b'{"s":"a"}', {**JSON, "Connect-Protocol-Version": "1"}
    )
    assert status == 200
    status, _, reply = await rig.post(
        url, UPPERCASE, b'{"s":"a"}', {**JSON, "Content-Encoding": "snappy"}
    )
    assert (status, error(reply)["code"]) == (501, "unimplemented")


BOMB = gzip.compress(b'{"s": "' + b"x" * 500_000 + b'"}')  # 500 KB in under 1 KB
assert len(BOMB) < 1000


async def test_body_limit_is_resource_exhausted(rig: Rig) -> None:
    url = await stringsvc_gateway(rig, max_body_size=1000)
    big = json.dumps({"s": "x" * 2000}).encode()
    status, _, reply = await rig.post(url, UPPERCASE, big)
    assert (status, error(reply)["code"]) == (429, "resource_exhausted")
    status, _, reply = await rig.post(url, UPPERCASE, BOMB, {**JSON, "Content-Encoding": "gzip"})
    assert (status, error(reply)["code"]) == (429, "resource_exhausted")


@pytest.mark.parametrize("auto_decompress", [True, False])
async def test_gzip_bodies_either_way(rig: Rig, auto_decompress: bool) -> None:
    channel = rig.channel(await rig.stringsvc())
    url = await rig.gateway(
        channel,
        StaticDescriptors.from_modules(pb),
        max_body_size=1000,
        runner_options={"auto_decompress": auto_decompress},
    )
    headers = {**JSON, "Content-Encoding": "gzip"}
    status, _, reply = await rig.post(url, UPPERCASE, gzip.compress(b'{"s": "gz"}'), headers)
    assert (status, reply) == (200, b'{"v":"GZ"}')
    status, _, reply = await rig.post(url, UPPERCASE, BOMB, headers)
    assert (status, error(reply)["code"]) == (429, "resource_exhausted")


# -- the upstream's failures ----------------------------------------------------------


async def test_upstream_down_is_unavailable(rig: Rig) -> None:
    url = await rig.gateway(rig.channel(free_port()), StaticDescriptors.from_modules(pb))
    status, _, reply = await rig.post(url, UPPERCASE, b'{"s": "x"}')
    assert status == 503
    assert error(reply) == {
        "code": "unavailable",
        "message": "calling stringsvc.v1.StringService/Uppercase failed: UNAVAILABLE",
    }  # gRPC's own message names the upstream's address; the caller does not get it
    async with ConnectClient(str(url).rstrip("/"), timeout_ms=5000) as client:
        with pytest.raises(ConnectError) as caught:
            await client.execute_unary(request=pb.UppercaseRequest(s="x"), method=UPPERCASE_INFO)
    assert caught.value.code is ConnectCode.UNAVAILABLE


@pytest.mark.parametrize(
    ("headers", "handler_timeout"),
    [({"Connect-Timeout-Ms": "200"}, None), ({"X-Timeout-Ms": "200"}, None), ({}, 0.2)],
)
async def test_deadline_on_a_slow_upstream(
    rig: Rig, headers: dict[str, str], handler_timeout: float | None
) -> None:
    url = await rig.gateway(
        rig.channel(await rig.echo_service()), ECHO_DESCRIPTORS, timeout=handler_timeout
    )
    started = time.monotonic()
    status, _, reply = await rig.post(url, "test.v1.EchoService/Slow", b"{}", {**JSON, **headers})
    elapsed = time.monotonic() - started
    assert (status, error(reply)["code"]) == (504, "deadline_exceeded")
    assert 0.19 <= elapsed < 1.5


async def test_connect_timeout_is_capped_by_the_handlers_timeout(rig: Rig) -> None:
    url = await rig.gateway(rig.channel(await rig.echo_service()), ECHO_DESCRIPTORS, timeout=0.2)
    started = time.monotonic()
    headers = {**JSON, "Connect-Timeout-Ms": "60000"}
    status, _, _ = await rig.post(url, "test.v1.EchoService/Slow", b"{}", headers)
    assert status == 504
    assert time.monotonic() - started < 1.5
    bad = {**JSON, "Connect-Timeout-Ms": "12345678901"}  # 11 digits
    status, _, reply = await rig.post(url, "test.v1.EchoService/Echo", b"{}", bad)
    assert (status, error(reply)["code"]) == (400, "invalid_argument")


async def test_rich_error_details_reach_a_connect_client(rig: Rig) -> None:
    url = await rig.gateway(rig.channel(await rig.echo_service()), ECHO_DESCRIPTORS)
    fail_method = ECHO_DESCRIPTORS.get("test.v1.EchoService/Fail")
    assert fail_method is not None
    request = json_format.ParseDict({"userName": "no such user", "count": 5}, EchoMessage())
    async with ConnectClient(str(url).rstrip("/"), timeout_ms=5000) as client:
        with ResponseMetadata() as meta, pytest.raises(ConnectError) as caught:
            await client.execute_unary(request=request, method=connect_method(fail_method))
    err = caught.value
    assert (err.code, err.message) == (ConnectCode.NOT_FOUND, "no such user")
    detail = StringValue()
    assert len(err.details) == 1
    assert err.details[0].Unpack(detail)
    assert detail.value == "why"
    assert meta.trailers().get("x-trace") == "t-1"  # trailers ride along as trailer- headers


async def test_server_fault_messages_and_details_are_not_passed_on(rig: Rig) -> None:
    url = await rig.gateway(rig.channel(await rig.echo_service()), ECHO_DESCRIPTORS)
    body = json.dumps({"userName": "db at 10.0.0.7 refused", "count": 13}).encode()  # INTERNAL
    status, headers, reply = await rig.post(url, "test.v1.EchoService/Fail", body)
    assert status == 500
    assert error(reply) == {
        "code": "internal",
        "message": "calling test.v1.EchoService/Fail failed: INTERNAL",
    }
    assert headers["trailer-x-trace"] == "t-1"


async def test_grpc_upstream_keeps_the_clients_rules(rig: Rig) -> None:
    """Bytes in and out with the reply's metadata; the Context's deadline, the channel's
    receive limit and a channel closed under a call end as a kitpy Client's would."""
    port = await rig.echo_service()
    echo_method = ECHO_DESCRIPTORS.get("test.v1.EchoService/Echo")
    slow_method = ECHO_DESCRIPTORS.get("test.v1.EchoService/Slow")
    assert echo_method is not None
    assert slow_method is not None
    payload = json_format.ParseDict({"userName": "ada" * 20}, EchoMessage()).SerializeToString()
    upstream = grpc_upstream(rig.channel(port))
    reply = await upstream(Context(), UnaryCall(echo_method, payload, (("x-tenant", "t1"),)))
    assert reply.payload == payload
    assert reply.headers["echo-x-tenant"] == "t1"

    expired = Context().with_timeout(0.0)
    with pytest.raises(DeadlineExceeded, match=r"before calling /test\.v1\.EchoService/Echo"):
        await upstream(expired, UnaryCall(echo_method, payload))

    small = grpc.aio.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", 16)]
    )
    rig.stops.append(small.close)
    with pytest.raises(Unavailable, match=r"grpc\.max_receive_message_length"):
        await grpc_upstream(small)(Context(), UnaryCall(echo_method, payload))

    closing = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    call = asyncio.ensure_future(grpc_upstream(closing)(Context(), UnaryCall(slow_method, b"")))
    await asyncio.sleep(0.2)  # the call is on its way
    await closing.close()
    with pytest.raises(Unavailable, match="channel closed"):
        await asyncio.wait_for(call, 5)


async def test_forwarded_headers_are_only_the_named_ones(rig: Rig) -> None:
    url = await rig.gateway(
        rig.channel(await rig.echo_service()),
        ECHO_DESCRIPTORS,
        metadata=forward_headers("x-tenant", "x-blob-bin"),
    )
    headers = {
        **JSON,
        "X-Tenant": "acme",
        "X-Other": "no",
        "Authorization": "Bearer secret",
        "X-Blob-Bin": base64.b64encode(b"\x00\x01\x02").decode(),
        "X-Request-Id": "req-42",
    }
    status, got, _ = await rig.post(url, "test.v1.EchoService/Echo", b"{}", headers)
    assert status == 200
    assert got["echo-x-tenant"] == "acme"
    assert got["echo-x-request-id"] == "req-42"
    assert got["echo-x-blob-bin"] == "AAEC"  # bytes both ways, base64 without padding
    assert "echo-x-other" not in got
    assert "echo-authorization" not in got
    status, _, reply = await rig.post(
        url, "test.v1.EchoService/Echo", b"{}", {**JSON, "X-Blob-Bin": "!!"}
    )
    assert (status, error(reply)["code"]) == (400, "invalid_argument")
    with pytest.raises(ValueError, match="content-type"):
        forward_headers("Content-Type")


# -- the code table -------------------------------------------------------------------

# connectrpc.com/docs/protocol#error-codes
SPEC = {
    "canceled": 499, "unknown": 500, "invalid_argument": 400, "deadline_exceeded": 504,
    "not_found": 404, "already_exists": 409, "permission_denied": 403,
    "resource_exhausted": 429, "failed_precondition": 400, "aborted": 409,
    "out_of_range": 400, "unimplemented": 501, "internal": 500, "unavailable": 503,
    "data_loss": 500, "unauthenticated": 401,
}  # fmt: skip


def test_codes_and_statuses_are_connects() -> None:
    table = {connect_code(code): connect_status(code) for code in Code if code is not Code.OK}
    assert table == SPEC
    assert {c.value for c in ConnectCode} == set(SPEC)  # the names connect-python knows


def test_metadata_headers_pass_only_what_a_header_can_carry() -> None:
    initial = [("x-a", "1"), ("content-type", "text/html"), ("grpc-encoding", "gzip")]
    trailing: list[tuple[str, str | bytes]] = [
        ("x-b-bin", b"\x00\x01"),
        ("x-c", "line\r\nbreak"),
        ("grpc-status", "0"),
    ]
    assert list(metadata_headers(initial, trailing)) == [("x-a", "1"), ("trailer-x-b-bin", "AAE")]


def test_descriptor_set_problems_are_value_errors() -> None:
    lonely = descriptor_pb2.FileDescriptorProto(name="a.proto", dependency=["missing.proto"])
    with pytest.raises(ValueError, match=r"'missing\.proto' is missing"):
        StaticDescriptors.from_descriptor_set(
            descriptor_pb2.FileDescriptorSet(file=[lonely]).SerializeToString()
        )
    loop = descriptor_pb2.FileDescriptorProto(name="b.proto", dependency=["b.proto"])
    with pytest.raises(ValueError, match="depends on itself"):
        StaticDescriptors.from_descriptor_set(
            descriptor_pb2.FileDescriptorSet(file=[loop]).SerializeToString()
        )
