"""stringsvc's Servers log, count and trace what the endpoint middleware cannot see.

A service whose Uppercase answers something no encoder can write (a bug a
template user could make) gives the caller INTERNAL, and -- through
``obs.server_error_handler`` -- an error log line with the traceback, a
``kitpy_server_requests_total{code="INTERNAL"}`` sample and a failed SERVER
span, over HTTP and gRPC.  A body that does not decode is logged and counted
too.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import aiohttp
import grpc.aio
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from kitpy import Context, KitError
from kitpy.transport.http import start_app

from ..endpoints import make_endpoints
from ..observability import Observability, build_observability
from ..service import BasicStringService
from ..transport_grpc import make_grpc_client, make_grpc_server
from ..transport_http import make_http_app

JSON = {"Content-Type": "application/json"}


class UnencodableService(BasicStringService):
    """Uppercase returns an object no encoder can serialise; Count is fine."""

    async def uppercase(self, ctx: Context, s: str) -> str:
        return cast(str, object())


Call = Callable[[str], Awaitable[str]]
"""Call Uppercase; -> the error code the caller got (or "OK")."""


@asynccontextmanager
async def over_http(obs: Observability) -> AsyncIterator[tuple[Call, Callable[[bytes], Any]]]:
    endpoints = make_endpoints(UnencodableService(), middleware=obs.server_middleware())
    app = make_http_app(
        endpoints,
        before=obs.http_server_before,
        error_handler=obs.server_error_handler,
        finalizer=obs.http_server_finalizer,
    )
    running = await start_app(app, host="127.0.0.1", port=0, grace_period=1.0)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:

        async def post(body: bytes) -> str:
            async with session.post(running.url / "uppercase", data=body, headers=JSON) as r:
                return "OK" if r.status == 200 else str((await r.json())["error"]["code"])

        async def call(s: str) -> str:
            return await post(json.dumps({"s": s}).encode())

        try:
            yield call, post
        finally:
            await running.stop()


@asynccontextmanager
async def over_grpc(obs: Observability) -> AsyncIterator[tuple[Call, None]]:
    endpoints = make_endpoints(UnencodableService(), middleware=obs.server_middleware())
    server = make_grpc_server(
        endpoints,
        before=obs.grpc_server_before,
        error_handler=obs.server_error_handler,
        finalizer=obs.grpc_server_finalizer,
    )
    port = await server.start("127.0.0.1:0")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    client = make_grpc_client(channel)

    async def call(s: str) -> str:
        try:
            await client.uppercase(Context(), s)
        except KitError as exc:
            return exc.code.name
        return "OK"

    try:
        yield call, None
    finally:
        await channel.close()
        await server.stop(grace=1.0)


@pytest.fixture
def observed() -> tuple[Observability, io.StringIO, InMemorySpanExporter]:
    logs, spans = io.StringIO(), InMemorySpanExporter()
    return build_observability(log_stream=logs, span_exporter=spans), logs, spans


def log_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.parametrize("serve", [over_http, over_grpc], ids=["http", "grpc"])
async def test_an_unencodable_response_is_logged_counted_and_traced(
    observed: tuple[Observability, io.StringIO, InMemorySpanExporter],
    serve: Callable[[Observability], Any],
) -> None:
    obs, logs, spans = observed
    async with serve(obs) as (call, _):
        assert await call("hello") == "INTERNAL"
    obs.tracer_provider.force_flush()

    failed = [line for line in log_lines(logs) if line["event"] == "request failed"]
    assert len(failed) == 1
    (line,) = failed
    assert (line["level"], line["method"], line["code"]) == ("error", "uppercase", "INTERNAL")
    assert line["error"] == "could not encode the response"
    causes = [frame["exc_type"] for frame in line["exception"]]  # the structured traceback
    assert causes[0] == "Internal"
    assert "TypeError" in causes  # what the encoder raised
    assert line["request_id"]
    assert line["trace_id"]
    sample = obs.registry.get_sample_value(
        "kitpy_server_requests_total", {"method": "uppercase", "code": "INTERNAL"}
    )
    assert sample == 1.0
    (server_span,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert server_span.status.status_code is StatusCode.ERROR


async def test_a_body_that_does_not_decode_is_logged_and_counted(
    observed: tuple[Observability, io.StringIO, InMemorySpanExporter],
) -> None:
    obs, logs, _ = observed
    async with over_http(obs) as (_, post):
        assert await post(b'{"s": ') == "INVALID_ARGUMENT"
    (line,) = [line for line in log_lines(logs) if line["event"] == "request failed"]
    assert (line["level"], line["method"], line["code"]) == (
        "warning",
        "uppercase",
        "INVALID_ARGUMENT",
    )
    assert "exception" not in line
    sample = obs.registry.get_sample_value(
        "kitpy_server_requests_total", {"method": "uppercase", "code": "INVALID_ARGUMENT"}
    )
    assert sample == 1.0
