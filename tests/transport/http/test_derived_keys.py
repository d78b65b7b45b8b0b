"""The Server's derived Context keys, and the JSON decoder's read of a body that has arrived.

The Server leaves the method, path, route, headers, peer and request id to be
derived when read, and ``decode_json`` takes a body that came with the headers
without awaiting; these tests pin down that what a user observes is the same
with or without a deadline header or before funcs, including after the request
has finished.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from kitpy import Context
from kitpy.context import REQUEST_ID
from kitpy.transport.http import (
    HEADERS,
    METHOD,
    PATH,
    PEER,
    REQUEST,
    ROUTE,
    Server,
    ServerBefore,
    add_routes,
    decode_json,
    encode_json,
)

from .conftest import JSON, Echo, ServeApp, upper

Seen = list[tuple[str, Context]]


def recording_server(seen: Seen, **options: Any) -> Server[Echo, Echo]:
    """A Server whose endpoint and finalizer record the Context they were given."""

    async def record(ctx: Context, request: Echo) -> Echo:
        seen.append(("endpoint", ctx))
        return Echo(s=request.s.upper())

    def finalize(ctx: Context, status: int, size: int) -> None:
        seen.append(("finalizer", ctx))

    return Server(record, decode_json(Echo), encode_json, finalizer=[finalize], **options)


def keep(ctx: Context, request: web.Request) -> Context:
    return ctx


@pytest.mark.parametrize(
    ("headers", "before"),
    [({}, ()), ({"X-Timeout-Ms": "5000"}, ()), ({}, (keep,))],
    ids=["plain", "deadline header", "before func"],
)
async def test_every_request_shape_gives_the_same_answer_and_context(
    serve_app: ServeApp,
    session: aiohttp.ClientSession,
    headers: dict[str, str],
    before: tuple[ServerBefore, ...],
) -> None:
    seen: Seen = []
    app = web.Application()
    add_routes(app, {"POST /users/{id}": recording_server(seen, before=before)})
    url = await serve_app(app)
    sent = {**JSON, **headers, "X-Request-Id": "r-7"}
    async with session.post(url / "users" / "42", data=b'{"s": "ab"}', headers=sent) as resp:
        assert (resp.status, await resp.read()) == (200, b'{"s":"AB"}')
    await asyncio.sleep(0)  # the request is over; its Context is still fully readable
    ctx = seen[0][1]
    assert ctx[METHOD] == "POST"
    assert ctx[PATH] == "/users/42"
    assert ctx[ROUTE] == "/users/{id}"
    assert ctx[HEADERS]["X-Request-Id"] == "r-7"
    assert ctx[PEER] == "127.0.0.1"
    assert ctx[REQUEST_ID] == "r-7"
    assert isinstance(ctx[REQUEST], web.Request)
    assert METHOD in ctx
    assert PATH in ctx
    assert REQUEST_ID in ctx


async def test_a_made_up_request_id_is_one_id_for_the_whole_request(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    seen: Seen = []
    app = web.Application()
    add_routes(app, {"POST /upper": recording_server(seen)})
    url = await serve_app(app)
    for _ in range(3):
        async with session.post(url / "upper", data=b'{"s": "a"}', headers=JSON) as resp:
            assert resp.status == 200
    by_request = [seen[i : i + 2] for i in range(0, len(seen), 2)]
    ids = []
    for (_, endpoint_ctx), (_, finalizer_ctx) in by_request:
        child = endpoint_ctx.with_value(METHOD, "changed").with_timeout(1.0)
        request_id = endpoint_ctx[REQUEST_ID]
        assert request_id == endpoint_ctx[REQUEST_ID] == child[REQUEST_ID]
        assert request_id == finalizer_ctx[REQUEST_ID] == finalizer_ctx.get(REQUEST_ID)
        assert child[METHOD] == "changed"
        assert endpoint_ctx[METHOD] == "POST"
        ids.append(request_id)
    assert len(set(ids)) == 3, ids


async def test_a_request_id_set_by_a_before_func_wins(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    seen: Seen = []

    def set_id(ctx: Context, request: web.Request) -> Context:
        return ctx.with_value(REQUEST_ID, "from-before")

    app = web.Application()
    add_routes(app, {"POST /upper": recording_server(seen, before=[set_id])})
    url = await serve_app(app)
    headers = {**JSON, "X-Request-Id": "from-header"}
    async with session.post(url / "upper", data=b'{"s": "a"}', headers=headers) as resp:
        assert resp.status == 200
    assert [ctx[REQUEST_ID] for _, ctx in seen] == ["from-before", "from-before"]


async def test_the_apps_client_max_size_still_applies(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    app = web.Application(client_max_size=64)  # smaller than the decoder's own 1 MiB limit
    add_routes(app, {"POST /echo": Server(upper, decode_json(Echo), encode_json)})
    url = await serve_app(app)
    body = b'{"s": "' + b"x" * 100 + b'"}'
    async with session.post(url / "echo", data=body, headers=JSON) as resp:
        assert resp.status == 413
        error = (await resp.json())["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert "64 bytes" in error["message"]


async def test_a_body_that_arrives_after_the_headers_is_waited_for(serve_app: ServeApp) -> None:
    seen: Seen = []
    app = web.Application()
    add_routes(app, {"POST /upper": recording_server(seen)})
    url = await serve_app(app)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        body = b'{"s": "late"}'
        writer.write(
            b"POST /upper HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        )
        await writer.drain()
        await asyncio.sleep(0.05)  # the handler is running by now, with no body yet
        writer.write(body)
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        writer.close()
    assert response.startswith(b"HTTP/1.1 200 OK"), response
    assert response.endswith(b'{"s":"LATE"}')
