"""Property tests: arbitrary bytes and arbitrary JSON at the decoder -> 4xx, never 500 or a hang.

The server runs on 127.0.0.1 in its own thread and event loop, so hypothesis can
drive it from a plain test with the stdlib's blocking HTTP client (each request
bounded by a socket timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kitpy import Context
from kitpy.transport.http import Server, add_routes, decode_json, encode_json, json_decoder


@dataclass(frozen=True, slots=True)
class Line:
    sku: str
    qty: int


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    lines: list[Line]
    note: str | None = None


async def accept(ctx: Context, request: Order) -> dict[str, int]:
    return {"lines": len(request.lines)}


@pytest.fixture(scope="module")
def server_port() -> Iterator[int]:
    """A kitpy server for ``Order`` on 127.0.0.1, in a background thread."""
    ready = threading.Event()
    port: list[int] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def main() -> None:
        app = web.Application()
        add_routes(
            app,
            {"POST /order": Server(accept, decode_json(Order, max_body_size=4096), encode_json)},
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port.append(runner.addresses[0][1])
        ready.set()
        await stop.wait()
        await runner.cleanup()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "server thread did not start"
    yield port[0]
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    loop.close()


def post(port: int, body: bytes, content_type: str = "application/json") -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/order", body=body, headers={"Content-Type": content_type})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
order_like = st.fixed_dictionaries(
    {"id": json_values, "lines": st.lists(json_values, max_size=3)},
    optional={"note": json_values, "extra": json_values},
)

SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def check(status: int, body: Any) -> None:
    assert status < 500
    if status == 200:
        assert set(body) == {"lines"}
    else:
        assert status in (400, 413)
        assert body["error"]["code"] == "INVALID_ARGUMENT"
        assert body["error"]["message"]


@SETTINGS
@given(body=st.binary(max_size=512))
def test_arbitrary_bytes_are_4xx(server_port: int, body: bytes) -> None:
    status, payload = post(server_port, body)
    check(status, payload)
    assert status != 200 or json.loads(body)["id"] is not None


@SETTINGS
@given(value=json_values | order_like)
def test_arbitrary_json_is_4xx_or_a_valid_order(server_port: int, value: Any) -> None:
    body = json.dumps(value).encode()
    status, payload = post(server_port, body)
    check(status, payload)
    if status == 200:  # then it really was a valid Order
        order = msgspec.json.decode(body, type=Order)
        assert payload == {"lines": len(order.lines)}


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=256) | json_values.map(lambda v: json.dumps(v).encode()))
def test_decoder_raises_only_its_documented_errors(body: bytes) -> None:
    decode = json_decoder(Order)
    with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
        decode(body)
