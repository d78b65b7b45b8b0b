"""A real Prometheus scrapes the running stringsvc's /metrics; kitpy's request counter reads back.

stringsvc is wired exactly as ``examples/stringsvc/observability.py`` describes:
server middleware on every endpoint, tracing hooks on the HTTP Server, and the
registry served at ``GET /metrics``.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from examples.stringsvc.endpoints import make_endpoints
from examples.stringsvc.observability import Observability, build_observability
from examples.stringsvc.service import BasicStringService
from examples.stringsvc.transport_http import make_http_app, make_http_client
from kitpy import Context

from .conftest import PrometheusServer

pytestmark = pytest.mark.servers


@pytest.fixture
async def stringsvc(prometheus_server: PrometheusServer) -> AsyncIterator[Observability]:
    """stringsvc over HTTP on the port Prometheus scrapes."""
    obs = build_observability(log_stream=io.StringIO(), span_exporter=InMemorySpanExporter())
    endpoints = make_endpoints(BasicStringService(), middleware=obs.server_middleware())
    app = make_http_app(
        endpoints, before=obs.http_server_before, finalizer=obs.http_server_finalizer
    )
    app.router.add_get("/metrics", obs.metrics_handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", prometheus_server.target_port).start()
    try:
        yield obs
    finally:
        await runner.cleanup()
        obs.shutdown()


async def query_value(session: aiohttp.ClientSession, api: str, promql: str) -> str | None:
    """The value of the first series ``promql`` returns, or None when there is none yet."""
    async with session.get(f"{api}/query", params={"query": promql}) as resp:
        body: dict[str, Any] = await resp.json()
    assert body["status"] == "success", body
    result = body["data"]["result"]
    return str(result[0]["value"][1]) if result else None


async def test_prometheus_scrapes_the_request_counter(
    prometheus_server: PrometheusServer, stringsvc: Observability
) -> None:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        svc = make_http_client(session, f"http://127.0.0.1:{prometheus_server.target_port}")
        for word in ("a", "b", "c"):
            assert await svc.uppercase(Context(), word) == word.upper()
        assert await svc.count(Context(), "four") == 4
        promql = 'kitpy_server_requests_total{job="kitpy",method="uppercase",code="OK"}'
        async with asyncio.timeout(30):  # a scrape every 250 ms; bounded all the same
            while True:
                value = await query_value(session, prometheus_server.api, promql)
                if value == "3":
                    break
                await asyncio.sleep(0.2)
        assert value == "3"
        count = 'kitpy_server_request_duration_seconds_count{method="count",code="OK"}'
        assert await query_value(session, prometheus_server.api, count) == "1"
