"""W3C propagation hooks over real sockets: raw aiohttp and grpc.aio calling the hooks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import grpc
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import CIMultiDict
from opentelemetry import trace
from opentelemetry.context import Context as OtelContext
from opentelemetry.propagators.textmap import CarrierT, Getter, Setter, TextMapPropagator
from opentelemetry.trace import SpanKind, StatusCode

from kitpy import Code, Context
from kitpy.testing import SpanRecorder
from kitpy.tracing import (
    baggage,
    call_tracing,
    grpc_client_before,
    grpc_server_before,
    grpc_server_finalizer,
    http_client_before,
    http_server_before,
    http_server_finalizer,
    rpc_attributes,
    with_baggage,
)
from kitpy.tracing.context import EMPTY
from kitpy.tracing.propagation import extractor, w3c_propagator

TIMEOUT = aiohttp.ClientTimeout(total=10)


@pytest.fixture
async def http_app(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, SpanRecorder]]:
    """An aiohttp app on a real port whose handler runs the server hooks around its work."""
    spans = SpanRecorder()
    before = http_server_before(spans.tracer)
    finalizer = http_server_finalizer()

    async def handle(request: web.Request) -> web.Response:
        ctx = before(Context(), request)
        status = 500 if request.match_info["id"] == "boom" else 200
        body = ",".join(f"{k}={v}" for k, v in sorted(baggage(ctx).items())).encode()
        finalizer(ctx, status, len(body))
        return web.Response(status=status, body=body)

    app = web.Application()
    app.router.add_post("/users/{id}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", spans
    finally:
        await runner.cleanup()


async def test_http_client_span_parents_the_server_span(
    http_app: tuple[str, SpanRecorder],
) -> None:
    base, spans = http_app
    inject = http_client_before()

    async def call(ctx: Context, user: str) -> tuple[int, str]:
        headers: CIMultiDict[str] = CIMultiDict()
        ctx = inject(ctx, headers)
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as session,
            session.post(f"{base}/users/{user}", headers=headers) as resp,
        ):
            return resp.status, await resp.text()

    client = call_tracing(spans.tracer, name="client call", kind=SpanKind.CLIENT)(call)
    status, body = await client(with_baggage(Context(), "tenant", "acme"), "42")
    assert (status, body) == (200, "tenant=acme")
    _, server_span = spans.assert_chain(["client call", "POST /users/{id}"])
    assert server_span.kind is SpanKind.SERVER
    assert server_span.attributes is not None
    assert server_span.attributes["http.route"] == "/users/{id}"
    assert server_span.attributes["http.request.method"] == "POST"
    assert server_span.attributes["url.path"] == "/users/42"
    assert server_span.attributes["http.response.status_code"] == 200
    assert server_span.attributes["server.address"] == "127.0.0.1"
    assert server_span.status.status_code is StatusCode.UNSET


async def test_http_span_names_from_routes_and_from_aiohttp_404s() -> None:
    """Hooks run by an aiohttp middleware see app routes and the router's own 404s."""
    spans = SpanRecorder()
    before = http_server_before(spans.tracer)
    finalizer = http_server_finalizer()

    @web.middleware
    async def traced(request: web.Request, handler: Handler) -> web.StreamResponse:
        ctx = before(Context(), request)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            finalizer(ctx, exc.status, 0)
            raise
        finalizer(ctx, response.status, 0)
        return response

    async def item(request: web.Request) -> web.Response:
        return web.Response(text=request.match_info["id"])

    async def item_text(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(middlewares=[traced])
    app.router.add_get("/items/{id}", item)
    app.router.add_route("*", "/any", item_text)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            for path in ("/items/1", "/nowhere", "/items/2", "/nowhere/else"):
                async with session.get(base + path) as resp:
                    await resp.read()
            for method in ("PUT", "DELETE"):
                async with session.request(method, base + "/any") as resp:
                    assert resp.status == 200
    finally:
        await runner.cleanup()
    names = [span.name for span in spans.spans]
    assert names == ["GET /items/{id}", "GET", "GET /items/{id}", "GET", "PUT /any", "DELETE /any"]
    routes = [(span.attributes or {}).get("http.route") for span in spans.spans]
    assert routes == ["/items/{id}", None, "/items/{id}", None, "/any", "/any"]


async def test_http_5xx_marks_the_server_span_as_error(http_app: tuple[str, SpanRecorder]) -> None:
    base, spans = http_app
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.post(f"{base}/users/boom") as resp,
    ):
        assert resp.status == 500
    span = spans.one("POST /users/{id}")
    assert span.parent is None  # no traceparent sent: a new trace
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "500"


async def test_http_server_rejects_a_malformed_traceparent_by_starting_a_new_trace(
    http_app: tuple[str, SpanRecorder],
) -> None:
    base, spans = http_app
    headers = {"traceparent": "00-not-a-trace-01", "baggage": "tenant=acme"}
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.post(f"{base}/users/1", headers=headers) as resp,
    ):
        assert resp.status == 200
        assert await resp.text() == "tenant=acme"
    assert spans.one("POST /users/{id}").parent is None


FULL_METHOD = "/kitpy.test.Echo/Say"


@pytest.fixture
async def grpc_target() -> AsyncIterator[tuple[str, SpanRecorder]]:
    """A grpc.aio server on a real port with a bytes-in/bytes-out method running the hooks."""
    spans = SpanRecorder()
    before = grpc_server_before(spans.tracer, method=FULL_METHOD)
    finalizer = grpc_server_finalizer()

    async def say(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        metadata: dict[str, str | bytes] = dict(context.invocation_metadata() or ())
        ctx = before(Context(), metadata)
        code = Code.UNAVAILABLE if request == b"fail" else Code.OK
        finalizer(ctx, code)
        return ",".join(f"{k}={v}" for k, v in sorted(baggage(ctx).items())).encode()

    handler = grpc.method_handlers_generic_handler(
        "kitpy.test.Echo", {"Say": grpc.unary_unary_rpc_method_handler(say)}
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", spans
    finally:
        await server.stop(None)


async def test_grpc_client_span_parents_the_server_span(
    grpc_target: tuple[str, SpanRecorder],
) -> None:
    target, spans = grpc_target
    inject = grpc_client_before()

    async def call(ctx: Context, request: bytes) -> bytes:
        metadata: dict[str, str | bytes] = {}
        ctx = inject(ctx, metadata)
        async with grpc.aio.insecure_channel(target) as channel:
            say: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(FULL_METHOD)
            response: bytes = await say(request, metadata=tuple(metadata.items()), timeout=10)
            return response

    name, attributes = rpc_attributes(FULL_METHOD)
    client = call_tracing(spans.tracer, name=name, kind=SpanKind.CLIENT, attributes=attributes)(
        call
    )
    assert await client(with_baggage(Context(), "tenant", "acme"), b"hi") == b"tenant=acme"
    assert await client(Context(), b"fail") == b""
    client_spans = [s for s in spans.named("kitpy.test.Echo/Say") if s.kind is SpanKind.CLIENT]
    server_spans = [s for s in spans.named("kitpy.test.Echo/Say") if s.kind is SpanKind.SERVER]
    assert len(client_spans) == len(server_spans) == 2
    for client_span, server_span in zip(client_spans, server_spans, strict=True):
        spans.assert_child_of(server_span, client_span)
    ok, failed = server_spans
    assert ok.attributes == {
        "rpc.system": "grpc",
        "rpc.service": "kitpy.test.Echo",
        "rpc.method": "Say",
        "rpc.grpc.status_code": 0,
    }
    assert ok.status.status_code is StatusCode.UNSET
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes is not None
    assert failed.attributes["rpc.grpc.status_code"] == Code.UNAVAILABLE.value
    assert len(spans.trace_ids()) == 2


class CountingPropagator(TextMapPropagator):
    """Records how often it is asked to extract; finds nothing."""

    def __init__(self) -> None:
        self.calls = 0

    def extract(
        self,
        carrier: CarrierT,
        context: OtelContext | None = None,
        getter: Getter[CarrierT] | None = None,
    ) -> OtelContext:
        self.calls += 1
        return EMPTY

    def inject(
        self,
        carrier: CarrierT,
        context: OtelContext | None = None,
        setter: Setter[CarrierT] | None = None,
    ) -> None:
        return None

    @property
    def fields(self) -> set[str]:
        return {"x-trace"}


def test_default_extractor_skips_carriers_without_trace_fields() -> None:
    extract = extractor(None)
    assert extract({"content-type": "application/json"}) is EMPTY
    parent = extract({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
    remote = trace.get_current_span(parent).get_span_context()
    assert remote.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert remote.is_remote
    with_baggage_only = extract({"baggage": "tenant=acme"})  # baggage alone is extracted too
    assert with_baggage_only is not EMPTY
    assert not trace.get_current_span(with_baggage_only).get_span_context().is_valid
    # a tracestate alone is nothing to W3C propagation: skipped, as the propagator ignores it
    assert extract({"tracestate": "vendor=1"}) is EMPTY
    assert w3c_propagator().extract({"tracestate": "vendor=1"}, EMPTY) == EMPTY
    both = extract({
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate": "vendor=1",
    })  # fmt: skip
    assert trace.get_current_span(both).get_span_context().trace_state.get("vendor") == "1"


def test_a_custom_propagator_is_always_asked() -> None:
    propagator = CountingPropagator()
    extract = extractor(propagator)
    extract({"uberctx-tenant": "acme"})  # it may read keys outside its ``fields``
    extract({})
    assert propagator.calls == 2
