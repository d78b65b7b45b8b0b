"""What every HTTP Server response promises: the operation name, the request id, one error code.

Real aiohttp servers on 127.0.0.1 (port 0), called with a plain aiohttp session
and with kitpy's own Client.
"""

from __future__ import annotations

import json
import re

import aiohttp
import pytest
from aiohttp import web

from kitpy import OPERATION, REQUEST_ID, Context
from kitpy.errors import Code, Internal, InvalidArgument, Unknown
from kitpy.transport.http import (
    Client,
    Server,
    add_fallback,
    add_routes,
    decode_json,
    decode_json_response,
    encode_json,
    encode_json_request,
)

from .conftest import JSON, Echo, ServeApp, upper


async def test_the_endpoint_sees_the_operation_named_by_method_and_route(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    seen: list[str] = []

    async def record(ctx: Context, request: Echo) -> Echo:
        seen.append(ctx[OPERATION])
        return request

    app = web.Application()
    server = Server(record, decode_json(Echo), encode_json)
    add_routes(app, {"POST /users/{id}": server, "PUT /plain": server})
    url = await serve_app(app)
    for method, path in [("POST", "/users/42"), ("PUT", "/plain")]:
        async with session.request(method, url.with_path(path), data=b'{"s": "a"}', headers=JSON):
            pass
    assert seen == ["POST /users/{id}", "PUT /plain"]  # the route, not the path requested


async def test_a_plain_exception_is_500_unknown_and_the_client_raises_unknown(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    async def leak(ctx: Context, request: Echo) -> Echo:
        raise ValueError("db password is hunter2")

    app = web.Application()
    add_routes(app, {"POST /leak": Server(leak, decode_json(Echo), encode_json)})
    url = await serve_app(app)
    async with session.post(url / "leak", data=b'{"s": "a"}', headers=JSON) as resp:
        assert resp.status == 500
        body = await resp.read()
    assert b"hunter2" not in body
    assert b'"code":"UNKNOWN"' in body
    client: Client[Echo, Echo] = Client(
        session, "POST", url / "leak", encode_json_request, decode_json_response(Echo)
    )
    with pytest.raises(Unknown) as info:
        await client(Context(), Echo(s="a"))
    assert info.value.code is Code.UNKNOWN
    assert "hunter2" not in info.value.message


async def test_every_response_carries_the_request_id_in_the_context(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    seen: list[str] = []

    async def record(ctx: Context, request: Echo) -> Echo:
        seen.append(ctx[REQUEST_ID])
        if request.s == "fail":
            raise InvalidArgument("no")
        return request

    app = web.Application()
    add_routes(app, {"POST /echo": Server(record, decode_json(Echo), encode_json)})
    url = await serve_app(app)
    sent = {**JSON, "X-Request-Id": "caller-7"}
    cases = [
        ({**JSON}, b'{"s": "ok"}', 200),  # made up by the server
        (sent, b'{"s": "ok"}', 200),  # the caller's
        (sent, b'{"s": "fail"}', 400),  # an endpoint error
        (sent, b"not json", 400),  # a decode error: the endpoint never ran
        ({**sent, "X-Timeout-Ms": "0"}, b'{"s": "ok"}', 504),  # an expired deadline
        ({**sent, "X-Timeout-Ms": "soon"}, b'{"s": "ok"}', 400),  # a malformed deadline
    ]
    ids = []
    for headers, body, status in cases:
        async with session.post(url / "echo", data=body, headers=headers) as resp:
            assert resp.status == status
            ids.append(resp.headers["X-Request-Id"])
    assert re.fullmatch(r"[0-9a-f]{12}-\d+", ids[0])
    assert ids[1:] == ["caller-7"] * 5
    assert seen == [ids[0], "caller-7", "caller-7"]  # what the endpoint (and a log line) saw


async def test_unmatched_requests_carry_a_request_id_too(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    app = web.Application()
    add_routes(app, {"POST /echo": Server(upper, decode_json(Echo), encode_json)})
    add_fallback(app)
    url = await serve_app(app)
    async with session.get(url / "nope", headers={"X-Request-Id": "caller-9"}) as resp:
        assert (resp.status, resp.headers["X-Request-Id"]) == (404, "caller-9")
    async with session.get(url / "echo") as resp:
        assert resp.status == 405
        assert re.fullmatch(r"[0-9a-f]{12}-\d+", resp.headers["X-Request-Id"])


async def test_a_before_func_that_sets_the_request_id_is_what_the_response_carries(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    def own_id(ctx: Context, request: web.Request) -> Context:
        return ctx.with_value(REQUEST_ID, "from-before")

    app = web.Application()
    add_routes(app, {"POST /echo": Server(upper, decode_json(Echo), encode_json, before=[own_id])})
    url = await serve_app(app)
    async with session.post(url / "echo", data=b'{"s": "a"}', headers=JSON) as resp:
        assert resp.headers["X-Request-Id"] == "from-before"


async def test_an_encoding_failure_is_internal_handled_and_finalized(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    handled: list[BaseException] = []
    finished: list[tuple[int, int]] = []

    def bad_encode(ctx: Context, response: Echo) -> web.StreamResponse:
        raise TypeError("cannot encode Echo")

    app = web.Application()
    server = Server(
        upper,
        decode_json(Echo),
        bad_encode,
        error_handler=lambda ctx, exc: handled.append(exc),
        finalizer=[lambda ctx, status, size: finished.append((status, size))],
    )
    add_routes(app, {"POST /echo": server})
    url = await serve_app(app)
    async with session.post(url / "echo", data=b'{"s": "a"}', headers=JSON) as resp:
        assert resp.status == 500
        body = await resp.read()
    assert json.loads(body) == {
        "error": {"code": "INTERNAL", "message": "could not encode the response"}
    }
    [err] = handled
    assert isinstance(err, Internal)
    assert isinstance(err.__cause__, TypeError)  # logged with the encoder's own traceback
    assert err.__cause__.__traceback__ is not None
    assert finished == [(500, len(body))]


@pytest.mark.parametrize(
    "key",
    ["PSOT /hello", "FETCH /hello", "POST /hello?x=1", "GET /hello#top"],
)
def test_add_routes_refuses_keys_that_would_never_match(key: str) -> None:
    app = web.Application()
    with pytest.raises(ValueError, match=re.escape(repr(key))):
        add_routes(app, {key: Server(upper, decode_json(Echo), encode_json)})
    assert list(app.router.routes()) == []


def test_add_routes_takes_every_standard_method_and_any() -> None:
    app = web.Application()
    server = Server(upper, decode_json(Echo), encode_json)
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "*", "post"]
    add_routes(app, {f"{method} /m{i}": server for i, method in enumerate(methods)})
    assert len(app.router.routes()) == len(methods) + 1  # GET adds HEAD too
