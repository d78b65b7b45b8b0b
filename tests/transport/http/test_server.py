"""The HTTP Server against a raw aiohttp client: Context keys, hook order, error path."""

from __future__ import annotations

import asyncio
import re
import warnings
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict

from kitpy import Code, Context, Key, KitError, NotFound, Unauthenticated
from kitpy.context import REQUEST_ID
from kitpy.transport.http import (
    HEADERS,
    METHOD,
    NOT_YET,
    PATH,
    PEER,
    ROUTE,
    NotYet,
    Server,
    add_routes,
    decode_json,
    encode_json,
)

from .conftest import JSON, Echo, ServeApp, upper


def app_with(path: str, server: Server[Any, Any], method: str = "POST") -> web.Application:
    app = web.Application()
    add_routes(app, {f"{method} {path}": server})
    return app


async def test_serves_an_endpoint_to_a_raw_client(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    url = await serve_app(app_with("/upper", Server(upper, decode_json(Echo), encode_json)))
    async with session.post(url / "upper", data=b'{"s": "hello"}', headers=JSON) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/json"
        assert await resp.read() == b'{"s":"HELLO"}'


async def test_context_carries_request_data(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    seen: list[Context] = []

    async def record(ctx: Context, request: Echo) -> Echo:
        seen.append(ctx)
        return request

    server = Server(record, decode_json(Echo), encode_json)
    url = await serve_app(app_with("/users/{id}", server))
    headers = {**JSON, "X-Request-Id": "req-123", "X-Custom": "yes"}
    async with session.post(url / "users" / "42", data=b'{"s": "a"}', headers=headers) as resp:
        assert resp.status == 200
    async with session.post(url / "users" / "7", data=b'{"s": "a"}', headers=JSON) as resp:
        assert resp.status == 200
    async with session.post(url / "users" / "7", data=b'{"s": "a"}', headers=JSON) as resp:
        assert resp.status == 200

    first, second, third = seen
    assert first[METHOD] == "POST"
    assert first[PATH] == "/users/42"
    assert first[ROUTE] == "/users/{id}"
    assert first[HEADERS]["x-custom"] == "yes"
    assert first[PEER] == "127.0.0.1"
    assert first[REQUEST_ID] == "req-123"
    assert first.deadline is None
    assert second[REQUEST_ID]
    assert second[REQUEST_ID] != third[REQUEST_ID]
    assert re.fullmatch(r"[0-9a-f]{12}-\d+", second[REQUEST_ID])


async def test_hooks_run_in_order_on_success(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    events: list[str] = []
    mark: Key[str] = Key("mark")

    def before(name: str) -> Any:
        def hook(ctx: Context, request: web.Request) -> Context:
            events.append(f"before {name} {request.method}")
            return ctx.with_value(mark, ctx.get(mark, "") + name)

        return hook

    def after(name: str) -> Any:
        def hook(ctx: Context, headers: CIMultiDict[str]) -> Context:
            events.append(f"after {name} mark={ctx[mark]}")
            headers.add("X-After", name)
            return ctx

        return hook

    def finalizer(name: str) -> Any:
        def hook(ctx: Context, status: int, size: int) -> None:
            events.append(f"finalizer {name} {status} {size} mark={ctx[mark]}")

        return hook

    async def endpoint(ctx: Context, request: Echo) -> Echo:
        events.append(f"endpoint mark={ctx[mark]}")
        return request

    async def decode(ctx: Context, request: web.Request) -> Echo:
        events.append("decode")
        return await decode_json(Echo)(ctx, request)

    def encode(ctx: Context, response: Echo) -> web.StreamResponse:
        events.append("encode")
        return encode_json(ctx, response)

    server = Server(
        endpoint,
        decode,
        encode,
        before=[before("1"), before("2")],
        after=[after("a"), after("b")],
        finalizer=[finalizer("x"), finalizer("y")],
    )
    url = await serve_app(app_with("/e", server))
    async with session.post(url / "e", data=b'{"s": "q"}', headers=JSON) as resp:
        body = await resp.read()
        assert resp.status == 200
        assert resp.headers.getall("X-After") == ["a", "b"]
    assert body == b'{"s":"q"}'
    assert events == [
        "before 1 POST",
        "before 2 POST",
        "decode",
        "endpoint mark=12",
        "after a mark=12",
        "after b mark=12",
        "encode",
        f"finalizer x 200 {len(body)} mark=12",
        f"finalizer y 200 {len(body)} mark=12",
    ]


async def test_errors_take_one_path(serve_app: ServeApp, session: aiohttp.ClientSession) -> None:
    events: list[str] = []

    async def endpoint(ctx: Context, request: Echo) -> Echo:
        raise NotFound(f"no such thing: {request.s}")

    def after(ctx: Context, headers: CIMultiDict[str]) -> Context:
        events.append("after")
        return ctx

    def handler(ctx: Context, exc: BaseException) -> None:
        events.append(f"error_handler {type(exc).__name__}")

    def finalizer(ctx: Context, status: int, size: int) -> None:
        events.append(f"finalizer {status} {size}")

    server = Server(
        endpoint,
        decode_json(Echo),
        encode_json,
        after=[after],
        error_handler=handler,
        finalizer=[finalizer],
    )
    url = await serve_app(app_with("/e", server))
    async with session.post(url / "e", data=b'{"s": "q"}', headers=JSON) as resp:
        body = await resp.read()
        assert resp.status == 404
        assert resp.headers["Content-Type"] == "application/json"
    assert body == b'{"error":{"code":"NOT_FOUND","message":"no such thing: q"}}'
    assert events == ["error_handler NotFound", f"finalizer 404 {len(body)}"]


async def test_unexpected_exception_is_500_without_its_text(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    seen: list[BaseException] = []

    async def endpoint(ctx: Context, request: Echo) -> Echo:
        raise RuntimeError("password=hunter2")

    server = Server(
        endpoint, decode_json(Echo), encode_json, error_handler=lambda c, e: seen.append(e)
    )
    url = await serve_app(app_with("/e", server))
    async with session.post(url / "e", data=b'{"s": "q"}', headers=JSON) as resp:
        body = await resp.read()
        assert resp.status == 500
    assert body == b'{"error":{"code":"UNKNOWN","message":"unknown"}}'
    assert b"hunter2" not in body
    assert len(seen) == 1
    assert isinstance(seen[0], RuntimeError)
    assert seen[0].__traceback__ is not None


async def test_failing_encoder_and_before_use_the_error_path(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    statuses: list[int] = []

    def bad_encode(ctx: Context, response: Echo) -> web.StreamResponse:
        raise TypeError("cannot encode")

    def deny(ctx: Context, request: web.Request) -> Context:
        if "Authorization" not in request.headers:
            raise Unauthenticated("missing token", headers={"WWW-Authenticate": "Bearer"})
        return ctx

    app = web.Application()
    add_routes(
        app,
        {
            "POST /encode": Server(upper, decode_json(Echo), bad_encode),
            "POST /auth": Server(
                upper,
                decode_json(Echo),
                encode_json,
                before=[deny],
                finalizer=[lambda c, status, size: statuses.append(status)],
            ),
        },
    )
    url = await serve_app(app)
    async with session.post(url / "encode", data=b'{"s": "q"}', headers=JSON) as resp:
        assert resp.status == 500
        assert await resp.json() == {
            "error": {"code": "INTERNAL", "message": "could not encode the response"}
        }
    async with session.post(url / "auth", data=b'{"s": "q"}', headers=JSON) as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"] == "Bearer"
        assert resp.headers["Content-Type"] == "application/json"
        assert await resp.json() == {
            "error": {"code": "UNAUTHENTICATED", "message": "missing token"}
        }
    assert statuses == [401]


async def test_error_details_are_sent_when_encodable(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    async def endpoint(ctx: Context, request: Echo) -> Echo:
        if request.s == "ok":
            raise KitError(Code.FAILED_PRECONDITION, "not ready", {"retry_after": 3})
        raise KitError(Code.FAILED_PRECONDITION, "not ready", {"bad": object()})

    url = await serve_app(app_with("/e", Server(endpoint, decode_json(Echo), encode_json)))
    async with session.post(url / "e", data=b'{"s": "ok"}', headers=JSON) as resp:
        assert resp.status == 400
        assert await resp.json() == {
            "error": {
                "code": "FAILED_PRECONDITION",
                "message": "not ready",
                "details": {"retry_after": 3},
            }
        }
    async with session.post(url / "e", data=b'{"s": "bad"}', headers=JSON) as resp:
        assert resp.status == 400
        assert await resp.json() == {
            "error": {"code": "FAILED_PRECONDITION", "message": "not ready"}
        }


def test_server_is_an_aiohttp_coroutine_handler() -> None:
    app = web.Application()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        app.router.add_post("/x", Server(upper, decode_json(Echo), encode_json))


async def test_add_routes_mounts_several_routes(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hi")

    app = web.Application()
    routes = add_routes(
        app,
        {"POST /upper": Server(upper, decode_json(Echo), encode_json), "get /hello": hello},
    )
    assert [(r.method, r.resource.canonical if r.resource else None) for r in routes] == [
        ("POST", "/upper"),
        ("GET", "/hello"),
    ]
    url = await serve_app(app)
    async with session.get(url / "hello") as resp:
        assert (resp.status, await resp.text()) == (200, "hi")
    async with session.head(url / "hello") as resp:
        assert resp.status == 200
    async with session.post(url / "upper", data=b'{"s": "x"}', headers=JSON) as resp:
        assert await resp.json() == {"s": "X"}


@pytest.mark.parametrize("spec", ["/nomethod", "POST", "POST nopath", ""])
def test_add_routes_rejects_malformed_specs(spec: str) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response()

    with pytest.raises(ValueError, match="METHOD /path"):
        add_routes(web.Application(), {spec: handler})


# -- decoding without awaiting: decode_now -------------------------------------------------


class CountingDecoder:
    """A decoder with a ``decode_now`` that answers ``now`` (a value or NOT_YET); counts calls."""

    def __init__(self, now: Echo | NotYet) -> None:
        self.now = now
        self.now_calls = self.awaited = 0

    def decode_now(self, ctx: Context, request: web.Request) -> Echo | NotYet:
        self.now_calls += 1
        return self.now

    async def __call__(self, ctx: Context, request: web.Request) -> Echo:
        self.awaited += 1
        return Echo(s="awaited")


@pytest.mark.parametrize("deadline", [False, True], ids=["no deadline", "deadline"])
async def test_the_server_decodes_without_awaiting_when_decode_now_can(
    serve_app: ServeApp, session: aiohttp.ClientSession, deadline: bool
) -> None:
    decoder = CountingDecoder(Echo(s="now"))
    url = await serve_app(app_with("/upper", Server(upper, decoder, encode_json)))
    headers = {**JSON, "X-Timeout-Ms": "5000"} if deadline else JSON
    async with session.post(url / "upper", data=b"{}", headers=headers) as resp:
        assert await resp.read() == b'{"s":"NOW"}'
    assert (decoder.now_calls, decoder.awaited) == (1, 0)


@pytest.mark.parametrize("deadline", [False, True], ids=["no deadline", "deadline"])
async def test_the_server_awaits_the_decoder_when_decode_now_says_not_yet(
    serve_app: ServeApp, session: aiohttp.ClientSession, deadline: bool
) -> None:
    decoder = CountingDecoder(NOT_YET)
    url = await serve_app(app_with("/upper", Server(upper, decoder, encode_json)))
    headers = {**JSON, "X-Timeout-Ms": "5000"} if deadline else JSON
    async with session.post(url / "upper", data=b"{}", headers=headers) as resp:
        assert await resp.read() == b'{"s":"AWAITED"}'
    assert (decoder.now_calls, decoder.awaited) == (1, 1)


async def test_the_json_decoder_says_not_yet_for_a_body_still_on_its_way(
    serve_app: ServeApp,
) -> None:
    # the headers first, the body later: decode_now finds nothing yet, the await reads it
    seen: list[Echo | NotYet] = []
    decoder = decode_json(Echo)

    async def decode(ctx: Context, request: web.Request) -> Echo:
        seen.append(decoder.decode_now(ctx, request))
        return await decoder(ctx, request)

    url = await serve_app(app_with("/upper", Server(upper, decode, encode_json)))
    body = b'{"s": "late"}'
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(
        b"POST /upper HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    )
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.write(body)
    answer = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(b'{"s":"LATE"}')
    assert seen == [NOT_YET]


async def test_the_json_decoder_decodes_a_body_that_came_with_the_headers_now(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    seen: list[Echo | NotYet] = []
    decoder = decode_json(Echo)

    async def decode(ctx: Context, request: web.Request) -> Echo:
        decoded = decoder.decode_now(ctx, request)
        seen.append(decoded)
        return await decoder(ctx, request) if decoded is NOT_YET else decoded

    url = await serve_app(app_with("/upper", Server(upper, decode, encode_json)))
    async with session.post(url / "upper", data=b'{"s": "x"}', headers=JSON) as resp:
        assert await resp.read() == b'{"s":"X"}'
    assert seen == [Echo(s="x")]
