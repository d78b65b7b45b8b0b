"""examples/stringsvc/observability.py end to end over real sockets (HTTP and gRPC).

A client instrumented with the same Observability calls stringsvc; the log
lines carry the request id and the trace id of the spans, the metrics count
both sides, and the client and server spans form one trace.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import AsyncIterator

import aiohttp
import grpc.aio
import pytest
from aiohttp import web
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from examples.stringsvc.endpoints import (
    Endpoints,
    make_endpoints,
)
from examples.stringsvc.observability import Observability, build_observability, otlp_exporter
from examples.stringsvc.service import BasicStringService
from examples.stringsvc.transport_grpc import make_grpc_client, start_grpc_server
from examples.stringsvc.transport_http import make_http_app, make_http_client
from kitpy import Context, InvalidArgument
from kitpy.testing import RequestMetrics


def traced_http_client(obs: Observability, session: aiohttp.ClientSession, base: str) -> Endpoints:
    client = make_http_client(session, base, before=obs.http_client_before)
    return obs.instrument_http_client(client)


def traced_grpc_client(obs: Observability, channel: grpc.aio.Channel) -> Endpoints:
    return obs.instrument_grpc_client(make_grpc_client(channel, before=obs.grpc_client_before))


def is_child(child: ReadableSpan, parent: ReadableSpan) -> bool:
    return (
        child.parent is not None
        and parent.context is not None
        and child.parent.span_id == parent.context.span_id
        and child.parent.trace_id == parent.context.trace_id
    )


class Harness:
    def __init__(self) -> None:
        self.logs = io.StringIO()
        self.exporter = InMemorySpanExporter()
        self.obs: Observability = build_observability(
            log_stream=self.logs, span_exporter=self.exporter
        )

    def lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.logs.getvalue().splitlines()]

    def spans(self) -> dict[tuple[str, SpanKind], ReadableSpan]:
        self.obs.tracer_provider.force_flush()
        return {(s.name, s.kind): s for s in self.exporter.get_finished_spans()}

    def sample(self, name: str, **labels: str) -> float | None:
        return self.obs.registry.get_sample_value(name, labels)


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness()
    try:
        yield h
    finally:
        h.obs.shutdown()


async def test_http_call_is_logged_counted_and_traced(harness: Harness) -> None:
    obs = harness.obs
    endpoints = make_endpoints(BasicStringService(), middleware=obs.server_middleware())
    app = make_http_app(
        endpoints, before=obs.http_server_before, finalizer=obs.http_server_finalizer
    )
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            svc = traced_http_client(obs, session, base)
            svc_raw = make_http_client(session, base)
            ctx = Context().with_timeout(10)
            with pytest.raises(InvalidArgument):  # untraced caller: its server span is a root
                await svc_raw.uppercase(ctx, "")
            assert await svc.uppercase(ctx, "hi") == "HI"  # the last spans of each name (below)
    finally:
        await runner.cleanup()

    spans = harness.spans()
    client = spans[("POST /uppercase", SpanKind.CLIENT)]
    server = spans[("POST /uppercase", SpanKind.SERVER)]
    assert is_child(server, client)
    assert client.context is not None
    trace_id = f"{client.context.trace_id:032x}"
    lines = harness.lines()
    server_ok = [x for x in lines if x["event"] == "endpoint call" and x["code"] == "OK"]
    assert len(server_ok) == 1
    assert server_ok[0]["method"] == "uppercase"
    assert server_ok[0]["trace_id"] == trace_id
    assert server_ok[0]["service"] == "stringsvc"
    assert isinstance(server_ok[0]["request_id"], str)
    assert server_ok[0]["request_id"]
    client_ok = [x for x in lines if x["event"] == "client call"]
    assert client_ok[0]["trace_id"] == trace_id
    bad = [x for x in lines if x.get("code") == "INVALID_ARGUMENT"]
    assert [(x["level"], x["error"]) for x in bad] == [("warning", "empty string")]
    assert harness.sample("kitpy_server_requests_total", method="uppercase", code="OK") == 1
    assert (
        harness.sample("kitpy_server_requests_total", method="uppercase", code="INVALID_ARGUMENT")
        == 1
    )
    assert harness.sample("kitpy_client_requests_total", method="uppercase", code="OK") == 1


async def test_grpc_call_is_traced_from_client_to_server(harness: Harness) -> None:
    obs = harness.obs
    endpoints = make_endpoints(BasicStringService(), middleware=obs.server_middleware())
    server, port = await start_grpc_server(
        endpoints, port=0, before=obs.grpc_server_before, finalizer=obs.grpc_server_finalizer
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            svc = traced_grpc_client(obs, channel)
            assert await svc.count(Context().with_timeout(10), "four") == 4
    finally:
        await server.stop(grace=1)
    spans = harness.spans()
    client = spans[("stringsvc.v1.StringService/Count", SpanKind.CLIENT)]
    server_span = spans[("stringsvc.v1.StringService/Count", SpanKind.SERVER)]
    inner = spans[("count", SpanKind.INTERNAL)]
    assert is_child(server_span, client)
    assert is_child(inner, server_span)
    assert harness.sample("kitpy_server_requests_total", method="count", code="OK") == 1


def test_otlp_without_the_exporter_installed_names_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.grpc.trace_exporter", None)
    with pytest.raises(RuntimeError, match="pip install opentelemetry-exporter-otlp-proto-grpc"):
        otlp_exporter("http://127.0.0.1:4317")


def test_request_metrics_helper_matches_the_middleware_labels() -> None:
    metrics = RequestMetrics()
    assert metrics.requests.labelnames == ("method", "code")
