"""Fuzz HTTP request decoding over a real socket: headers, deadlines, request ids, bodies.

A kitpy HTTP :class:`~kitpy.transport.http.Server` (with the structlog logging
middleware rendering JSON through orjson, as services run it) serves an echo
endpoint on 127.0.0.1.  Hypothesis writes raw requests to a socket: arbitrary
``X-Timeout-Ms`` and ``X-Request-Id`` values (any bytes but CR/LF), extra
headers, Content-Types, bodies, and framings (Content-Length, chunked, none).
Every request must get an answer within 10 s that is a 4xx, a valid 200, or --
only for a valid but small deadline budget -- a 504 DEADLINE_EXCEEDED; never
another 5xx.
"""

from __future__ import annotations

import http.client
import io
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from kitpy import Context
from kitpy.context import REQUEST_ID
from kitpy.errors import Code, is_client_fault
from kitpy.log import call_logging, make_logger
from kitpy.transport.http import Server, add_routes, decode_json, encode_json

from .harness import fuzz_settings, loop_thread


@dataclass(frozen=True, slots=True)
class Echo:
    s: str


async def echo(ctx: Context, request: Echo) -> dict[str, Any]:
    return {"s": request.s, "request_id": ctx[REQUEST_ID], "deadline": ctx.deadline is not None}


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    log = make_logger(stream=io.StringIO())
    endpoint = call_logging(log)(echo)

    async def start() -> web.AppRunner:
        app = web.Application()
        server = Server(endpoint, decode_json(Echo, max_body_size=2048), encode_json)
        add_routes(app, {"POST /echo": server})
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    with loop_thread() as thread:
        runner = thread.run(start())
        try:
            yield int(runner.addresses[0][1])
        finally:
            thread.run(runner.cleanup())


header_bytes = st.binary(max_size=60).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
timeouts = st.one_of(
    st.integers(0, 10**12).map(lambda n: str(n).encode()),
    st.text("0123456789-+.e xX", max_size=14).map(str.encode),
    header_bytes,
)
request_ids = st.one_of(
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=200),
    st.text(max_size=40).map(lambda s: s.encode("utf-8", "surrogatepass")),
    header_bytes,
)
content_types = st.one_of(
    st.sampled_from(
        [
            b"application/json",
            b"Application/JSON; charset=UTF-8",
            b"application/json; charset=latin-1",
            b"application/vnd.api+json",
            b"application/json;;;",
            b"text/plain",
            b"multipart/form-data; boundary=x",
            b"",
        ]
    ),
    header_bytes,
)
content_encodings = st.one_of(
    st.sampled_from([b"gzip", b"deflate", b"br", b"identity", b"gzip, deflate", b"x-unknown"]),
    header_bytes,
)  # the body is never actually compressed: a real coding must fail to decode, as a 4xx
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
bodies = st.one_of(
    st.binary(max_size=300),
    st.fixed_dictionaries({"s": st.text(max_size=50)}).map(lambda d: json.dumps(d).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.just(b'{"s": "' + b"x" * 3000 + b'"}'),  # over the 2048-byte limit
)
extra_names = st.from_regex(r"\AX-F-[A-Za-z0-9-]{1,12}\Z")


@dataclass(frozen=True)
class RawRequest:
    timeout: bytes | None
    request_id: str | bytes | None
    content_type: bytes | None
    content_encoding: bytes | None
    body: bytes
    framing: str
    extra: dict[str, bytes]

    def encode(self) -> bytes:
        lines = [b"POST /echo HTTP/1.1", b"Host: fuzz", b"Connection: close"]
        if self.timeout is not None:
            lines.append(b"X-Timeout-Ms: " + self.timeout)
        if self.request_id is not None:
            rid = self.request_id
            lines.append(b"X-Request-Id: " + (rid.encode() if isinstance(rid, str) else rid))
        if self.content_type is not None:
            lines.append(b"Content-Type: " + self.content_type)
        if self.content_encoding is not None:
            lines.append(b"Content-Encoding: " + self.content_encoding)
        lines += [name.encode() + b": " + value for name, value in self.extra.items()]
        body = self.body
        if self.framing == "length":
            lines.append(b"Content-Length: %d" % len(body))
        elif self.framing == "short-length":  # the rest is garbage after the request
            lines.append(b"Content-Length: %d" % (len(body) // 2))
        elif self.framing == "chunked":
            lines.append(b"Transfer-Encoding: chunked")
            half = len(body) // 2
            chunks = [c for c in (body[:half], body[half:]) if c]
            body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        else:  # no framing: no body as far as HTTP/1.1 is concerned
            body = b""
        return b"\r\n".join(lines) + b"\r\n\r\n" + body


raw_requests = st.builds(
    RawRequest,
    timeout=st.none() | timeouts,
    request_id=st.none() | request_ids,
    content_type=st.none() | content_types,
    content_encoding=st.none() | content_encodings,
    body=bodies,
    framing=st.sampled_from(["length", "short-length", "chunked", "none"]),
    extra=st.dictionaries(extra_names, header_bytes, max_size=3),
)


def send(port: int, raw: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.read()


def small_valid_budget(value: bytes | None) -> bool:
    return value is not None and value.isdigit() and len(value) <= 10 and int(value) <= 1000


@fuzz_settings(200)
@given(request=raw_requests)
def test_any_request_is_4xx_or_valid_never_5xx(port: int, request: RawRequest) -> None:
    status, body = send(port, request.encode())
    if status == 200:
        reply = json.loads(body)
        sent = json.loads(
            request.body[: len(request.body) // 2 if request.framing == "short-length" else None]
        )
        assert reply["s"] == sent["s"]
        rid = reply["request_id"]
        assert rid
        assert rid.isascii()
        assert len(rid) <= 128
        if isinstance(request.request_id, str) and len(request.request_id) <= 128:
            assert rid == request.request_id
        return
    if status == 504:
        assert small_valid_budget(request.timeout), (status, body)
        assert json.loads(body)["error"]["code"] == "DEADLINE_EXCEEDED"
        return
    assert 400 <= status < 500, (status, body)
    if body.startswith(b'{"error"'):  # kitpy's answer (aiohttp's own parser errors are text)
        assert is_client_fault(Code[json.loads(body)["error"]["code"]])
