"""kitpy.metrics.prometheus: instruments on an explicit registry, served over real aiohttp."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import prometheus_client
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from kitpy import Context, InvalidArgument
from kitpy.metrics import Counter, Gauge, Histogram, call_metrics
from kitpy.metrics.prometheus import gauge, metrics_handler, request_metrics


async def echo(ctx: Context, request: str) -> str:
    if not request:
        raise InvalidArgument("empty")
    return request


async def test_instrumented_endpoint_records_on_the_given_registry() -> None:
    registry = CollectorRegistry()
    requests, latency = request_metrics(registry)
    endpoint = call_metrics(requests, latency, name="echo")(echo)
    await endpoint(Context(), "a")
    await endpoint(Context(), "b")
    with pytest.raises(InvalidArgument):
        await endpoint(Context(), "")

    def sample(name: str, code: str) -> float | None:
        return registry.get_sample_value(name, {"method": "echo", "code": code})

    assert sample("kitpy_server_requests_total", "OK") == 2
    assert sample("kitpy_server_requests_total", "INVALID_ARGUMENT") == 1
    assert sample("kitpy_server_request_duration_seconds_count", "OK") == 2
    assert sample("kitpy_server_request_duration_seconds_bucket", "OK") is None  # needs "le"
    assert prometheus_client.REGISTRY.get_sample_value("kitpy_server_requests_total") is None


def test_prometheus_instruments_satisfy_the_protocols() -> None:
    registry = CollectorRegistry()
    requests, latency = request_metrics(registry, subsystem="client")
    c: Counter = requests
    h: Histogram = latency
    g: Gauge = gauge(registry, "in_flight", "Calls in flight.")
    c.labels(method="m", code="OK").inc()
    h.labels(method="m", code="OK").observe(0.002)
    g.inc()
    assert registry.get_sample_value("kitpy_client_requests_total", {"method": "m", "code": "OK"})
    assert registry.get_sample_value("in_flight") == 1


@pytest.fixture
async def metrics_url() -> AsyncIterator[tuple[str, CollectorRegistry]]:
    registry = CollectorRegistry()
    app = web.Application()
    app.router.add_get("/metrics", metrics_handler(registry))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/metrics", registry
    finally:
        await runner.cleanup()


async def test_metrics_handler_serves_the_registry(
    metrics_url: tuple[str, CollectorRegistry],
) -> None:
    url, registry = metrics_url
    requests, latency = request_metrics(registry)
    endpoint = call_metrics(requests, latency, name="Echo")(echo)
    for word in ("a", "b", "c"):
        await endpoint(Context(), word)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        text = await resp.text()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("kitpy_server_requests_total", (("code", "OK"), ("method", "Echo")))] == 3
