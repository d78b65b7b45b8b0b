"""Hostile clients on a real socket: idle floods, stalled headers, bytes that are not HTTP, drain.

Raw TCP connections (``asyncio.open_connection``) to ``start_app`` on
127.0.0.1, as an attacker would open them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from kitpy.transport.http import (
    RunningApp,
    Server,
    add_fallback,
    add_routes,
    decode_json,
    encode_json,
    start_app,
)
from kitpy.transport.http.connections import default_max_connections

from .conftest import Echo, upper

POST = (
    b"POST /echo HTTP/1.1\r\nHost: t\r\n"
    b"Content-Type: application/json\r\nContent-Length: 10\r\n\r\n"
)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body: (status, headers, body)."""
    async with asyncio.timeout(5):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


async def send(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        return await read_response(reader)
    finally:
        writer.close()


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """Whether the server closes the connection within ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            return await reader.read(1) == b""
    except TimeoutError:
        return False


@pytest.fixture
async def serve() -> AsyncIterator[RunningApp]:
    app = web.Application()
    add_routes(app, {"POST /echo": Server(upper, decode_json(Echo), encode_json)})
    add_fallback(app)
    running = await start_app(
        app, host="127.0.0.1", port=0, max_connections=8, idle_timeout=0.5, grace_period=2.0
    )
    yield running
    await running.stop()


def port_of(running: RunningApp) -> int:
    return running.addresses[0][1]


async def test_connections_over_the_cap_are_answered_503_and_logged_once(
    serve: RunningApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="kitpy.transport.http")
    port = port_of(serve)
    idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(8)]
    await asyncio.sleep(0.05)
    assert serve.connections.open == 8
    answers = [await send(port, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n") for _ in range(20)]
    for status, headers, body in answers:
        assert status == 503
        assert headers["connection"] == "close"
        assert headers["retry-after"] == "1"
        assert json.loads(body)["error"]["code"] == "UNAVAILABLE"
    assert serve.connections.refused == 20
    refusals = [r for r in caplog.records if "over the limit of 8" in r.getMessage()]
    assert len(refusals) == 1  # one line per interval, not one per connection
    for _, writer in idle:
        writer.close()


async def test_idle_connections_and_stalled_headers_are_closed_after_the_idle_timeout(
    serve: RunningApp,
) -> None:
    port = port_of(serve)
    silent_reader, silent = await asyncio.open_connection("127.0.0.1", port)
    slow_reader, slow = await asyncio.open_connection("127.0.0.1", port)
    slow.write(b"POST /echo HTTP/1.1\r\nHost: t\r\nX-Slow: ")  # and never the rest
    assert await closed_by_server(silent_reader, within=3)
    assert await closed_by_server(slow_reader, within=3)
    for writer in (silent, slow):
        writer.close()
    await asyncio.sleep(0.05)
    assert serve.connections.open == 0  # the slots are free again
    status, _, body = await send(port, POST + b'{"s": "a"}')
    assert (status, json.loads(body)) == (200, {"s": "A"})


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 TLS hello\r\n\r\n",
        b"GET /echo HTTP/1.1\r\nHost: t\r\nX-Token: Bearer SECRETTOKEN" + b"x" * 9000 + b"\r\n\r\n",
        b"GET /\x00/secret HTTP/1.1\r\nHost: t\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nSECRET\r\n",
    ],
    ids=["not-http", "oversize-header", "nul-in-target", "bad-chunk"],
)
async def test_what_aiohttp_cannot_parse_gets_kitpy_json_with_no_echo(
    serve: RunningApp, request_bytes: bytes
) -> None:
    status, headers, body = await send(port_of(serve), request_bytes)
    assert 400 <= status < 500
    assert headers["content-type"].startswith("application/json")
    error = json.loads(body)["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert b"SECRET" not in body
    assert b"secret" not in body


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n",
    ],
    ids=["CONNECT", "OPTIONS *"],
)
async def test_a_target_that_is_not_a_path_gets_the_json_404_and_echoes_nothing(
    serve: RunningApp, request_bytes: bytes
) -> None:
    """CONNECT host:port and OPTIONS * name no path; routed as "/", they reach the fallback."""
    status, headers, body = await send(port_of(serve), request_bytes)
    assert status == 404
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["error"]["code"] == "NOT_FOUND"
    assert b"example.com" not in body


async def test_in_drain_every_response_says_connection_close_and_requests_still_get_answers(
    serve: RunningApp,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(serve))
    writer.write(POST + b'{"s": "a"}')
    status, headers, _ = await read_response(reader)
    assert status == 200
    assert headers.get("connection", "keep-alive").lower() != "close"
    serve.drain()
    writer.write(POST + b'{"s": "b"}')  # on the already-open keep-alive connection
    status, headers, body = await read_response(reader)
    assert (status, json.loads(body)) == (200, {"s": "B"})
    assert headers["connection"].lower() == "close"
    assert await closed_by_server(reader, within=2)
    writer.close()


def test_the_default_cap_leaves_file_descriptors_free() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    cap = default_max_connections()
    assert 16 <= cap <= 10_000
    if soft != resource.RLIM_INFINITY:
        assert cap <= soft * 3 // 4 or cap == 16


@pytest.fixture
async def slow_body_app() -> AsyncIterator[RunningApp]:
    app = web.Application()
    decode = decode_json(Echo, body_timeout=0.3)
    add_routes(app, {"POST /echo": Server(upper, decode, encode_json)})
    running = await start_app(app, host="127.0.0.1", port=0, grace_period=2.0)
    yield running
    await running.stop()


async def test_a_body_that_stalls_is_answered_408_after_the_body_timeout(
    slow_body_app: RunningApp,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(slow_body_app))
    writer.write(POST + b'{"s":')  # 5 of the 10 bytes, then nothing
    status, _, body = await read_response(reader)
    assert status == 408
    error = json.loads(body)["error"]
    assert error == {
        "code": "DEADLINE_EXCEEDED",
        "message": "the request body did not arrive within 0.3 s",
    }
    writer.close()


@pytest.mark.parametrize(
    ("coding", "status", "code"),
    [
        (b"gzip, chunked", 501, "UNIMPLEMENTED"),  # aiohttp would ignore the gzip: kitpy refuses
        (b"deflate, chunked", 501, "UNIMPLEMENTED"),
        (b"chunked, chunked", 400, "INVALID_ARGUMENT"),  # aiohttp's parser refuses these
        (b"identity", 400, "INVALID_ARGUMENT"),
    ],
)
async def test_a_transfer_coding_other_than_chunked_is_refused(
    serve: RunningApp, coding: bytes, status: int, code: str
) -> None:
    body = b'{"s": "a"}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    answered, _, answer = await send(
        port_of(serve),
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: " + coding + b"\r\n\r\n" + chunked,
    )
    assert answered == status
    assert json.loads(answer)["error"]["code"] == code
