"""The benchmark report's servers answer the way the load generators expect.

Each app is served in-process on 127.0.0.1 (port 0) and gets real requests: the
kitpy full stack over HTTP and gRPC (with and without the bearer token the load
generator sends) and the FastAPI comparison app.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import grpc.aio
import pytest
from aiohttp import web
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from bench.fastapi_app import make_app, make_server
from bench.fullstack import (
    LAYERS,
    bench_token,
    build_full_stack,
    make_http_full_stack_app,
    start_grpc_full_stack,
)
from bench.handmade import HandmadeServicer, make_http_handmade_app
from examples.stringsvc.endpoints import UppercaseRequest
from examples.stringsvc.pb import stringsvc_pb2 as pb
from examples.stringsvc.pb import stringsvc_pb2_grpc as pb_grpc
from kitpy import Context
from kitpy.auth import TOKEN
from kitpy.errors import Unauthenticated

BODY = b'{"s": "hello, kitpy benchmark"}'
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:
        yield s


async def test_http_full_stack_needs_the_token_and_counts_every_call(
    session: aiohttp.ClientSession,
) -> None:
    runner = web.AppRunner(make_http_full_stack_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        auth = {**JSON, "Authorization": f"Bearer {bench_token()}"}
        async with session.post(f"{base}/uppercase", data=BODY, headers=auth) as resp:
            assert resp.status == 200
            assert await resp.json() == {"v": "HELLO, KITPY BENCHMARK"}
        async with session.post(f"{base}/uppercase", data=BODY, headers=JSON) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["code"] == "UNAUTHENTICATED"
        async with session.get(f"{base}/metrics") as resp:
            text = await resp.text()
        assert 'kitpy_server_requests_total{code="OK",method="uppercase"} 1.0' in text
        assert 'kitpy_server_requests_total{code="UNAUTHENTICATED",method="uppercase"} 1.0' in text
    finally:
        await runner.cleanup()


def uppercase_call(
    channel: grpc.aio.Channel,
) -> grpc.aio.UnaryUnaryMultiCallable[pb.UppercaseRequest, pb.UppercaseResponse]:
    """The Uppercase method of stringsvc on ``channel``."""
    return channel.unary_unary(
        "/stringsvc.v1.StringService/Uppercase",
        request_serializer=pb.UppercaseRequest.SerializeToString,
        response_deserializer=pb.UppercaseResponse.FromString,
    )


async def test_grpc_full_stack_needs_the_token() -> None:
    server, port = await start_grpc_full_stack(port=0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = uppercase_call(channel)
            metadata = (("authorization", f"Bearer {bench_token()}"),)
            reply = await call(pb.UppercaseRequest(s="hello"), timeout=10, metadata=metadata)
            assert reply.v == "HELLO"
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call(pb.UppercaseRequest(s="hello"), timeout=10)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await server.stop(grace=1.0)


async def test_layers_can_be_left_out() -> None:
    full = build_full_stack().endpoints.uppercase_endpoint
    with pytest.raises(Unauthenticated):
        await full(Context(), UppercaseRequest(s="a"))
    token = Context().with_value(TOKEN, bench_token())
    assert (await full(token, UppercaseRequest(s="a"))).v == "A"
    no_jwt = build_full_stack(without={"jwt"}).endpoints.uppercase_endpoint
    assert (await no_jwt(Context(), UppercaseRequest(s="b"))).v == "B"
    bare = build_full_stack(without=LAYERS).endpoints.uppercase_endpoint
    assert (await bare(Context(), UppercaseRequest(s="c"))).v == "C"
    with pytest.raises(ValueError, match="unknown layers"):
        build_full_stack(without={"caching"})


async def test_the_handmade_app_does_the_full_stacks_work_without_kitpy(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    exported = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_ON)
    provider.add_span_processor(SimpleSpanProcessor(exported))
    log_path = tmp_path / "lines.jsonl"
    with log_path.open("wb") as log_file:
        app = make_http_handmade_app(provider=provider, log_file=log_file)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/uppercase"
        auth = {**JSON, "Authorization": f"Bearer {bench_token()}"}
        try:
            for _ in range(2):  # the second call finds the token verified
                async with session.post(url, data=BODY, headers=auth) as resp:
                    assert resp.status == 200
                    assert await resp.json() == {"v": "HELLO, KITPY BENCHMARK"}
            async with session.post(url, data=BODY, headers=JSON) as resp:
                assert resp.status == 401
            bad = {**JSON, "Authorization": f"Bearer {bench_token(lifetime=-60)}"}
            async with session.post(url, data=BODY, headers=bad) as resp:
                assert resp.status == 401
                assert "expired" in (await resp.json())["error"]
            async with session.post(url, data=b'{"s": 1}', headers=auth) as resp:
                assert resp.status == 400
        finally:
            await runner.cleanup()
    lines = [json.loads(line) for line in log_path.read_bytes().splitlines()]
    codes = ["OK", "OK", "UNAUTHENTICATED", "UNAUTHENTICATED", "INVALID_ARGUMENT"]
    assert [line["code"] for line in lines] == codes
    spans = exported.get_finished_spans()
    assert [span.name for span in spans] == ["POST /uppercase"] * 5
    for line, span in zip(lines, spans, strict=True):
        assert line["trace_id"] == f"{span.context.trace_id:032x}"
        assert line["request_id"]
        assert line["method"] == "uppercase"
    assert spans[0].attributes is not None
    assert spans[0].attributes["http.response.status_code"] == 200
    assert spans[0].attributes["http.route"] == "/uppercase"


async def test_the_handmade_servicer_does_the_grpc_full_stacks_work(tmp_path: Path) -> None:
    exported = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_ON)
    provider.add_span_processor(SimpleSpanProcessor(exported))
    log_path = tmp_path / "lines.jsonl"
    with log_path.open("wb") as log_file:
        server = grpc.aio.server()
        servicer = HandmadeServicer(provider=provider, log_file=log_file)
        pb_grpc.add_StringServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                call = uppercase_call(channel)
                token = (("authorization", f"Bearer {bench_token()}"),)
                reply = await call(pb.UppercaseRequest(s="hello"), timeout=10, metadata=token)
                assert reply.v == "HELLO"
                for metadata, request, code in [
                    ((), pb.UppercaseRequest(s="a"), grpc.StatusCode.UNAUTHENTICATED),
                    (token, pb.UppercaseRequest(s=""), grpc.StatusCode.INVALID_ARGUMENT),
                ]:
                    with pytest.raises(grpc.aio.AioRpcError) as info:
                        await call(request, timeout=10, metadata=metadata)
                    assert info.value.code() == code
                    trailers = dict(info.value.trailing_metadata() or ())
                    assert trailers["x-request-id"]
        finally:
            await server.stop(grace=1.0)
    lines = [json.loads(line) for line in log_path.read_bytes().splitlines()]
    assert [line["code"] for line in lines] == ["OK", "UNAUTHENTICATED", "INVALID_ARGUMENT"]
    spans = exported.get_finished_spans()
    assert [span.name for span in spans] == ["stringsvc.v1.StringService/Uppercase"] * 3
    for line, span in zip(lines, spans, strict=True):
        assert line["span_id"] == f"{span.context.span_id:016x}"
    assert [(s.attributes or {})["rpc.grpc.status_code"] for s in spans] == [0, 16, 3]


async def test_fastapi_app_does_the_same_work(session: aiohttp.ClientSession) -> None:
    server, sock = make_server(make_app())
    port = sock.getsockname()[1]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn offers only this flag
                await asyncio.sleep(0.01)
        url = f"http://127.0.0.1:{port}/uppercase"
        async with session.post(url, data=BODY, headers=JSON) as resp:
            assert resp.status == 200
            assert await resp.json() == {"v": "HELLO, KITPY BENCHMARK"}
        async with session.post(url, data=b'{"s": ""}', headers=JSON) as resp:
            assert resp.status == 400
        async with session.post(url, data=b'{"s": "a", "x": 1}', headers=JSON) as resp:
            assert resp.status == 422
        async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
            assert "http_requests_total" in await resp.text()
    finally:
        server.should_exit = True
        async with asyncio.timeout(10):
            await task


def test_the_grpc_bench_interval_brackets_the_median() -> None:
    from bench.grpc_server import median_interval

    assert median_interval([0.97] * 5) == (0.97, 0.97)
    spread = [0.90, 0.93, 0.95, 0.96, 0.97, 0.99, 1.02]
    low, high = median_interval(spread)
    assert min(spread) <= low < 0.96 < high <= max(spread)
    assert median_interval(spread) == (low, high)  # seeded: the same figures every run


@pytest.fixture
async def raw_proxy() -> AsyncIterator[str]:
    """bench/gateway.py's raw proxy in front of its upstream app; yields the proxy's URL."""
    from bench.gateway import make_raw_proxy_app, make_upstream_app

    runners: list[web.AppRunner] = []

    async def serve(app: web.Application) -> str:
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"127.0.0.1:{runner.addresses[0][1]}"

    upstream = await serve(make_upstream_app())
    async with aiohttp.ClientSession() as upstream_session:
        proxy = await serve(make_raw_proxy_app(upstream_session, upstream))
        try:
            yield f"http://{proxy}"
        finally:
            for runner in reversed(runners):
                await runner.cleanup()


async def test_raw_proxy_forwards_and_answers_502_for_a_dead_upstream(
    raw_proxy: str, session: aiohttp.ClientSession
) -> None:
    from bench.gateway import make_raw_proxy_app

    url = raw_proxy
    async with session.post(f"{url}/uppercase", data=BODY, headers=JSON) as resp:
        assert resp.status == 200
        assert await resp.json() == {"v": "HELLO, KITPY BENCHMARK"}
        assert resp.headers["X-Request-Id"]
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
    runner = web.AppRunner(make_raw_proxy_app(session, dead))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        port = runner.addresses[0][1]
        async with session.post(f"http://127.0.0.1:{port}/uppercase", data=BODY) as resp:
            assert resp.status == 502
            assert await resp.json() == {"error": "upstream failed"}
    finally:
        await runner.cleanup()


async def test_raw_proxy_logs_no_traceback_when_the_caller_leaves_mid_body(
    raw_proxy: str, caplog: pytest.LogCaptureFixture
) -> None:
    host, port = raw_proxy.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /uppercase HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n" + BODY[:10]
    )
    await writer.drain()
    await asyncio.sleep(0.2)  # the proxy has sent the headers up and waits for the body
    writer.transport.abort()  # a reset, as wrk's connections when it stops
    await asyncio.sleep(0.3)
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [], [r.getMessage() for r in errors]
