"""svcname's endpoints without a network: call them as plain async functions."""

from __future__ import annotations

import io
import json

import pytest
from kitpy import Code, Context, InvalidArgument
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ..endpoints import HelloRequest, HelloResponse, make_endpoints, make_hello_endpoint
from ..observability import build_observability
from ..service import BasicService


async def test_hello_endpoint() -> None:
    endpoint = make_hello_endpoint(BasicService())
    assert await endpoint(Context(), HelloRequest(name="Ada")) == HelloResponse("Hello, Ada!")


async def test_empty_name_is_invalid_argument() -> None:
    endpoint = make_hello_endpoint(BasicService())
    with pytest.raises(InvalidArgument) as info:
        await endpoint(Context(), HelloRequest(name=""))
    assert info.value.code is Code.INVALID_ARGUMENT


async def test_endpoints_with_observability_log_count_and_trace() -> None:
    logs, spans = io.StringIO(), InMemorySpanExporter()
    obs = build_observability(log_stream=logs, span_exporter=spans)
    eps = make_endpoints(BasicService(), middleware=obs.server_middleware())

    ctx = Context().with_timeout(5.0)
    assert await eps.hello(ctx, "Ada") == "Hello, Ada!"
    with pytest.raises(InvalidArgument):
        await eps.hello(ctx, "")
    obs.shutdown()  # flushes the spans

    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert [line["code"] for line in lines] == ["OK", "INVALID_ARGUMENT"]
    for code in ("OK", "INVALID_ARGUMENT"):
        labels = {"method": "hello", "code": code}
        metric = "svcname_server_requests_total"
        value = obs.registry.get_sample_value(metric, labels)
        assert value == 1.0
    assert [span.name for span in spans.get_finished_spans()] == ["hello", "hello"]
