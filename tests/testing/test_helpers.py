"""kitpy.testing: the helpers' own assertions fail loudly and their imports stay light."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from opentelemetry.trace import SpanKind

import kitpy.testing
from kitpy import Context, chain
from kitpy.metrics import call_metrics
from kitpy.testing import CapturedLogs, RequestMetrics, SpanRecorder
from kitpy.tracing import call_tracing


def test_public_names() -> None:
    assert set(kitpy.testing.__all__) == {
        "CapturedLogs", "FakeClock", "MemoryCounter", "MemoryGauge", "MemoryHistogram",
        "RequestMetrics", "SpanRecorder", "StreamMetrics",
    }  # fmt: skip
    for name in kitpy.testing.__all__:
        assert getattr(kitpy.testing, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = kitpy.testing.Nope


def test_importing_the_fake_clock_pulls_in_no_integration() -> None:
    probe = (
        "import json, sys\n"
        "from kitpy.testing import FakeClock, RequestMetrics\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    loaded = set(json.loads(out))
    assert "kitpy" in loaded
    assert not loaded & {"structlog", "opentelemetry", "prometheus_client", "aiohttp", "grpc"}


def test_captured_logs_find_and_assert() -> None:
    logs = CapturedLogs()
    logs.logger.info("a", n=1)
    logs.logger.info("a", n=2)
    logs.logger.warning("b", n=1)
    assert [e["n"] for e in logs.find("a")] == [1, 2]
    assert logs.find(n=1)[1]["log_level"] == "warning"
    assert logs.assert_logged_once("a", n=2)["log_level"] == "info"
    with pytest.raises(AssertionError, match="found 2"):
        logs.assert_logged_once("a")
    with pytest.raises(AssertionError, match="found 0"):
        logs.assert_logged_once("c")
    logs.clear()
    assert logs.entries == []


async def test_request_metrics_assertion_reports_what_it_saw() -> None:
    metrics = RequestMetrics()

    async def ping(ctx: Context, request: None) -> str:
        return "pong"

    endpoint = call_metrics(metrics.requests, metrics.latency, name="ping")(ping)
    await endpoint(Context(), None)
    metrics.assert_count(1, method="ping")
    assert metrics.count(method="ping") == 1
    with pytest.raises(AssertionError, match=r"expected 2 calls, counted 1"):
        metrics.assert_count(2, method="ping")


async def test_span_recorder_assertions() -> None:
    spans = SpanRecorder()

    async def leaf(ctx: Context, request: None) -> None:
        return None

    a = call_tracing(spans.tracer, name="a", kind=SpanKind.SERVER)
    b = call_tracing(spans.tracer, name="b")
    await chain(a, b)(leaf)(Context(), None)
    await call_tracing(spans.tracer, name="c")(leaf)(Context(), None)
    span_a, span_b = spans.assert_chain(["a", "b"])
    with pytest.raises(AssertionError, match="not a child"):
        spans.assert_child_of(span_a, span_b)
    with pytest.raises(AssertionError, match="not a child"):
        spans.assert_child_of(spans.one("c"), span_a)
    with pytest.raises(AssertionError, match="expected one span 'zzz', found 0"):
        spans.one("zzz")
    assert len(spans.trace_ids()) == 2
    spans.clear()
    assert spans.spans == ()
    spans.shutdown()
