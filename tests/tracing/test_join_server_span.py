"""call_tracing(join_server_span=True): one span per request behind a server hook.

Real kitpy HTTP Servers on 127.0.0.1 with the tracing hooks, called over
aiohttp; spans recorded in memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode

from kitpy import Context, Endpoint, InvalidArgument, Unavailable
from kitpy.testing import SpanRecorder
from kitpy.tracing import (
    SPAN,
    call_tracing,
    current_span,
    http_server_before,
    http_server_finalizer,
)
from kitpy.tracing.context import SERVER_SPAN
from kitpy.transport.http import Server, decode_json, encode_json

TIMEOUT = aiohttp.ClientTimeout(total=10)


@dataclass(frozen=True)
class Echo:
    s: str


async def echo(ctx: Context, request: Echo) -> Echo:
    current_span(ctx).set_attribute("app.seen", request.s)
    if request.s == "bad":
        raise InvalidArgument("bad input")
    if request.s == "down":
        raise Unavailable("db down")
    return request


Wrap = Callable[[Endpoint[Echo, Echo]], Endpoint[Echo, Echo]]
Serve = Callable[[Wrap], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[tuple[Serve, SpanRecorder]]:
    """Start a traced kitpy Server around ``middleware(echo)``; yield (start, spans)."""
    spans = SpanRecorder()
    runners: list[web.AppRunner] = []

    async def start(middleware: Wrap) -> str:
        app = web.Application()
        server = Server(
            middleware(echo),
            decode_json(Echo),
            encode_json,
            before=[http_server_before(spans.tracer)],
            finalizer=[http_server_finalizer()],
        )
        app.router.add_post("/echo", server)
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{runner.addresses[0][1]}/echo"

    try:
        yield start, spans
    finally:
        for runner in runners:
            await runner.cleanup()


async def post(url: str, s: str) -> int:
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.post(url, json={"s": s}) as resp,
    ):
        await resp.read()
        return resp.status


async def test_joined_endpoint_is_traced_by_the_server_span_alone(
    serve: tuple[Serve, SpanRecorder],
) -> None:
    start, spans = serve
    url = await start(
        call_tracing(
            spans.tracer, name="svc.echo", attributes={"app.kind": "t"}, join_server_span=True
        )
    )
    assert await post(url, "hi") == 200
    assert [(s.name, s.kind) for s in spans.spans] == [("POST /echo", SpanKind.SERVER)]
    span = spans.one("POST /echo")
    assert span.attributes is not None
    assert span.attributes["kitpy.endpoint"] == "svc.echo"
    assert span.attributes["app.kind"] == "t"
    assert span.attributes["app.seen"] == "hi"  # the endpoint's current span is the SERVER span
    assert span.attributes["http.response.status_code"] == 200


async def test_default_still_starts_a_child_span(serve: tuple[Serve, SpanRecorder]) -> None:
    start, spans = serve
    url = await start(call_tracing(spans.tracer, name="svc.echo"))
    assert await post(url, "hi") == 200
    server_span, inner = spans.assert_chain(["POST /echo", "svc.echo"])
    assert inner.kind is SpanKind.INTERNAL
    assert server_span.attributes is not None
    assert "kitpy.endpoint" not in server_span.attributes


async def test_joined_errors_follow_the_status_policy_on_the_server_span(
    serve: tuple[Serve, SpanRecorder],
) -> None:
    start, spans = serve
    url = await start(call_tracing(spans.tracer, join_server_span=True))
    assert await post(url, "bad") == 400
    client_fault = spans.one("POST /echo")
    assert client_fault.status.status_code is StatusCode.UNSET
    assert client_fault.attributes is not None
    assert client_fault.attributes["kitpy.code"] == "INVALID_ARGUMENT"
    assert client_fault.events == ()
    spans.clear()
    assert await post(url, "down") == 503
    server_fault = spans.one("POST /echo")
    assert server_fault.status.status_code is StatusCode.ERROR
    assert [event.name for event in server_fault.events] == ["exception"]
    assert len(spans.spans) == 1


async def test_a_nested_joined_endpoint_gets_its_own_span(
    serve: tuple[Serve, SpanRecorder],
) -> None:
    start, spans = serve
    inner = call_tracing(spans.tracer, name="inner", join_server_span=True)(echo)

    def outer(next: Endpoint[Echo, Echo]) -> Endpoint[Echo, Echo]:
        async def endpoint(ctx: Context, request: Echo) -> Echo:
            await next(ctx, request)
            return await inner(ctx, request)  # an in-process call with the same Context

        return call_tracing(spans.tracer, name="outer", join_server_span=True)(endpoint)

    url = await start(outer)
    assert await post(url, "hi") == 200
    _, inner_span = spans.assert_chain(["POST /echo", "inner"])
    assert inner_span.kind is SpanKind.INTERNAL
    assert len(spans.spans) == 2


async def test_join_without_a_server_span_starts_a_span() -> None:
    spans = SpanRecorder()
    seen: list[object] = []

    async def leaf(ctx: Context, request: str) -> str:
        seen.append(ctx[SPAN])
        return request

    endpoint = call_tracing(spans.tracer, name="direct", join_server_span=True)(leaf)
    assert await endpoint(Context(), "x") == "x"
    span = spans.one("direct")
    assert span.parent is None
    assert seen[0] is not None


async def test_a_client_span_never_joins(serve: tuple[Serve, SpanRecorder]) -> None:
    start, spans = serve

    url = await start(
        call_tracing(
            spans.tracer, name="call upstream", kind=SpanKind.CLIENT, join_server_span=True
        )
    )
    assert await post(url, "hi") == 200
    _, client_span = spans.assert_chain(["POST /echo", "call upstream"])
    assert client_span.kind is SpanKind.CLIENT


async def test_an_unrecorded_server_span_costs_the_joined_layer_no_coroutine() -> None:
    # the layer is a plain def: with nothing to record it returns next's own awaitable
    spans = SpanRecorder()
    quiet = NonRecordingSpan(SpanContext(1, 2, False))
    ctx = Context().with_values({SPAN: quiet, SERVER_SPAN: quiet})
    seen: list[Context] = []
    answer: asyncio.Future[Echo] = asyncio.get_running_loop().create_future()
    answer.set_result(Echo(s="ok"))

    def next_endpoint(ctx: Context, request: Echo) -> asyncio.Future[Echo]:
        seen.append(ctx)
        return answer

    joined = call_tracing(spans.tracer, join_server_span=True)(next_endpoint)
    assert joined(ctx, Echo(s="x")) is answer
    assert seen[0].get(SERVER_SPAN) is None  # taken: a nested traced endpoint starts its own
    assert seen[0].get(SPAN) is quiet
    assert spans.spans == ()
