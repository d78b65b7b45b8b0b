"""One trace across HTTP client -> HTTP server -> gRPC client -> gRPC server, over real sockets.

Everything is kitpy: the transports' Clients and Servers with the tracing hooks,
and ``call_tracing`` around each endpoint.  The spans go to one in-memory
exporter; the test checks every parent/child link and that baggage set by the
first caller reaches the last server.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import grpc
import pytest
from aiohttp import web
from opentelemetry.trace import SpanKind, StatusCode

from kitpy import Context, Endpoint, Unavailable
from kitpy.testing import SpanRecorder
from kitpy.tracing import (
    baggage,
    call_tracing,
    grpc_client_before,
    http_client_before,
    http_server_before,
    http_server_finalizer,
    rpc_attributes,
    with_baggage,
)
from kitpy.transport import grpc as kgrpc
from kitpy.transport import http as khttp
from tests.tracing.grpc_rig import FULL_METHOD, SERVICE, data, serve_traced, text


@dataclass(frozen=True)
class Relay:
    s: str


@dataclass(frozen=True)
class Relayed:
    v: str


async def say(ctx: Context, request: str) -> str:
    """The last server: echoes the request with the baggage it received."""
    if request == "fail":
        raise Unavailable("backend down")
    tenant = baggage(ctx).get("tenant")
    return f"{request}:{tenant}"


@pytest.fixture
async def grpc_target(spans: SpanRecorder) -> AsyncIterator[str]:
    async with serve_traced(spans.tracer, call_tracing(spans.tracer, name="say")(say)) as target:
        yield target


@pytest.fixture
async def http_base(spans: SpanRecorder, grpc_target: str) -> AsyncIterator[str]:
    """An HTTP server whose endpoint calls the gRPC server through a kitpy gRPC Client."""
    async with grpc.aio.insecure_channel(grpc_target) as channel:
        name, attributes = rpc_attributes(FULL_METHOD)
        grpc_client: Endpoint[str, str] = call_tracing(
            spans.tracer, name=name, kind=SpanKind.CLIENT, attributes=attributes
        )(
            kgrpc.Client(
                channel,
                SERVICE,
                "Say",
                data,
                text,
                bytes,
                before=[grpc_client_before()],
                request_serializer=bytes,
            )
        )

        @call_tracing(spans.tracer, name="relay")
        async def relay(ctx: Context, request: Relay) -> Relayed:
            return Relayed(v=await grpc_client(ctx, request.s))

        app = web.Application()
        khttp.add_routes(
            app,
            {
                "POST /relay/{hop}": khttp.Server(
                    relay,
                    khttp.decode_json(Relay),
                    khttp.encode_json,
                    before=[http_server_before(spans.tracer)],
                    finalizer=[http_server_finalizer()],
                )
            },
        )
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        try:
            yield f"http://127.0.0.1:{runner.addresses[0][1]}"
        finally:
            await runner.cleanup()


@pytest.fixture
def spans() -> SpanRecorder:
    return SpanRecorder()


async def test_one_trace_across_http_and_grpc(spans: SpanRecorder, http_base: str) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        client = call_tracing(spans.tracer, name="POST /relay/{hop}", kind=SpanKind.CLIENT)(
            khttp.Client(
                session,
                "POST",
                f"{http_base}/relay/1",
                khttp.encode_json_request,
                khttp.decode_json_response(Relayed),
                before=[http_client_before()],
            )
        )
        ctx = with_baggage(Context().with_timeout(10), "tenant", "acme")
        assert await client(ctx, Relay(s="hi")) == Relayed(v="hi:acme")

    by_kind = {(s.name, s.kind): s for s in spans.spans}
    assert len(by_kind) == len(spans.spans) == 6
    chain = [
        by_kind[("POST /relay/{hop}", SpanKind.CLIENT)],
        by_kind[("POST /relay/{hop}", SpanKind.SERVER)],
        by_kind[("relay", SpanKind.INTERNAL)],
        by_kind[("kitpy.test.Echo/Say", SpanKind.CLIENT)],
        by_kind[("kitpy.test.Echo/Say", SpanKind.SERVER)],
        by_kind[("say", SpanKind.INTERNAL)],
    ]
    assert chain[0].parent is None
    for parent, child in itertools.pairwise(chain):
        spans.assert_child_of(child, parent)
    assert len(spans.trace_ids()) == 1
    http_server = chain[1]
    assert http_server.attributes is not None
    assert http_server.attributes["http.route"] == "/relay/{hop}"
    assert http_server.attributes["http.response.status_code"] == 200
    grpc_server = chain[4]
    assert grpc_server.attributes is not None
    assert grpc_server.attributes["rpc.service"] == SERVICE
    assert grpc_server.attributes["rpc.grpc.status_code"] == 0


async def test_a_server_fault_deep_down_marks_every_hop(
    spans: SpanRecorder, http_base: str
) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        client = khttp.Client(
            session,
            "POST",
            f"{http_base}/relay/2",
            khttp.encode_json_request,
            khttp.decode_json_response(Relayed),
            before=[http_client_before()],
        )
        with pytest.raises(Unavailable):
            await client(Context().with_timeout(10), Relay(s="fail"))

    by_kind = {(s.name, s.kind): s for s in spans.spans}
    grpc_server = by_kind[("kitpy.test.Echo/Say", SpanKind.SERVER)]
    http_server = by_kind[("POST /relay/{hop}", SpanKind.SERVER)]
    spans.assert_child_of(by_kind[("say", SpanKind.INTERNAL)], grpc_server)
    assert by_kind[("say", SpanKind.INTERNAL)].status.status_code is StatusCode.ERROR
    assert grpc_server.status.status_code is StatusCode.ERROR
    assert http_server.attributes is not None
    assert http_server.attributes["http.response.status_code"] == 503
    assert http_server.status.status_code is StatusCode.ERROR
    assert len(spans.trace_ids()) == 1
