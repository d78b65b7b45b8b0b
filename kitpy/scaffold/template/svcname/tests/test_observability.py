"""svcname's log lines and metrics cover requests the endpoint never sees."""

from __future__ import annotations

import io
import json

import aiohttp
from kitpy.transport.http import start_app

from ..endpoints import make_endpoints
from ..observability import build_observability
from ..service import BasicService
from ..transport_http import make_http_app

JSON = {"Content-Type": "application/json"}


async def test_a_body_that_does_not_decode_is_logged_and_counted() -> None:
    logs = io.StringIO()
    obs = build_observability(log_stream=logs)
    app = make_http_app(
        make_endpoints(BasicService(), middleware=obs.server_middleware()),
        before=obs.http_server_before,
        error_handler=obs.server_error_handler,
        finalizer=obs.http_server_finalizer,
    )
    running = await start_app(app, host="127.0.0.1", port=0, grace_period=2.0)
    try:
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            url = f"{str(running.url).rstrip('/')}/hello"
            async with session.post(url, data=b"{not json", headers=JSON) as r:
                assert r.status == 400
    finally:
        await running.stop()
        obs.shutdown()
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    (line,) = [line for line in lines if line["event"] == "request failed"]
    assert (line["method"], line["code"]) == ("hello", "INVALID_ARGUMENT")
    assert line["level"] == "warning"
    labels = {"method": "hello", "code": "INVALID_ARGUMENT"}
    sample = obs.registry.get_sample_value("svcname_server_requests_total", labels)
    assert sample == 1.0
