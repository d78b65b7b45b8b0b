"""The HTTP Client against raw aiohttp servers and against the kitpy Server."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict

from kitpy import (
    Code,
    Context,
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    Key,
    KitError,
    NotFound,
    Unavailable,
    chain,
)
from kitpy.errors import error_class, from_code
from kitpy.transport.http import (
    Client,
    OutgoingRequest,
    Server,
    add_routes,
    decode_json,
    decode_json_response,
    encode_json,
    encode_json_request,
)
from tests.servers import free_port

from .conftest import Echo, ServeApp


async def test_client_against_a_raw_server(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    seen: list[tuple[str, str, str | None, bytes]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((request.method, request.path, request.content_type, await request.read()))
        return web.json_response({"s": "from raw", "extra": "ignored by default"})

    app = web.Application()
    app.router.add_put("/things/{id}", handler)
    url = await serve_app(app)

    def encode(ctx: Context, out: OutgoingRequest, request: Echo) -> None:
        out.url = out.url / request.s
        encode_json_request(ctx, out, request)

    client = Client(session, "put", url / "things", encode, decode_json_response(Echo))
    assert await client(Context(), Echo(s="7")) == Echo(s="from raw")
    assert seen == [("PUT", "/things/7", "application/json", b'{"s":"7"}')]


async def test_client_against_the_kitpy_server(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    async def upper(ctx: Context, request: Echo) -> Echo:
        return Echo(s=request.s.upper())

    app = web.Application()
    add_routes(app, {"POST /upper": Server(upper, decode_json(Echo), encode_json)})
    url = await serve_app(app)
    client = Client(session, "POST", url / "upper", encode_json_request, decode_json_response(Echo))
    assert await client(Context(), Echo(s="hi")) == Echo(s="HI")
    with pytest.raises(InvalidArgument) as info:
        await Client(
            session, "POST", url / "upper", encode_json_request, decode_json_response(Echo)
        )(Context(), {"s": 1})
    assert info.value.message == "invalid request body: Expected `str`, got `int` - at `$.s`"


ERROR_CODES = [c for c in Code if c is not Code.OK]


@pytest.fixture
async def failing_url(serve_app: ServeApp) -> Any:
    async def fail(ctx: Context, request: Echo) -> Echo:
        code = Code[request.s]
        raise from_code(code, f"failed with {code.name}", {"code_number": int(code)})

    app = web.Application()
    add_routes(app, {"POST /fail": Server(fail, decode_json(Echo), encode_json)})
    return await serve_app(app) / "fail"


@pytest.mark.parametrize("code", ERROR_CODES, ids=[c.name for c in ERROR_CODES])
async def test_errors_round_trip_for_every_code(
    failing_url: Any, session: aiohttp.ClientSession, code: Code
) -> None:
    client = Client(session, "POST", failing_url, encode_json_request, decode_json_response(Echo))
    with pytest.raises(KitError) as info:
        await client(Context(), Echo(s=code.name))
    err = info.value
    assert type(err) is error_class(code)
    assert err.code is code
    assert err.message == f"failed with {code.name}"
    assert err.details == {"code_number": int(code)}


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (502, b"<html>bad gateway</html>", Unavailable, "upstream answered 502 Bad Gateway"),
        (404, b"not here", NotFound, "upstream answered 404 Not Found"),
        (418, b"", InvalidArgument, "upstream answered 418 I'm a Teapot"),
        (
            500,
            b'{"error": {"code": "NO_SUCH_CODE"}}',
            Internal,
            "upstream answered 500 Internal Server Error",
        ),
        (
            503,
            b'{"error": {"code": "OK", "message": "?"}}',
            Unavailable,
            "upstream answered 503 Service Unavailable",
        ),
    ],
)
async def test_non_kitpy_error_responses_map_by_status(
    serve_app: ServeApp,
    session: aiohttp.ClientSession,
    status: int,
    body: bytes,
    error: type[KitError],
    message: str,
) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body)

    app = web.Application()
    app.router.add_post("/x", handler)
    url = await serve_app(app)
    client = Client(session, "POST", url / "x", encode_json_request, decode_json_response(Echo))
    with pytest.raises(error) as info:
        await client(Context(), Echo(s="a"))
    assert type(info.value) is error
    assert info.value.message == message


async def test_connection_refused_is_unavailable(session: aiohttp.ClientSession) -> None:
    url = f"http://127.0.0.1:{free_port()}/x"
    client = Client(session, "POST", url, encode_json_request, decode_json_response(Echo))
    with pytest.raises(Unavailable) as info:
        await client(Context(), Echo(s="a"))
    assert info.value.message == "upstream unavailable (ClientConnectorError)"
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectionError)


async def test_dropped_connection_is_unavailable(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    async def drop(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    app = web.Application()
    app.router.add_post("/x", drop)
    url = await serve_app(app)
    client = Client(session, "POST", url / "x", encode_json_request, decode_json_response(Echo))
    with pytest.raises(Unavailable):
        await client(Context(), Echo(s="a"))


async def test_undecodable_response_is_internal(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"v": 1})

    app = web.Application()
    app.router.add_post("/x", handler)
    url = await serve_app(app)
    client = Client(session, "POST", url / "x", encode_json_request, decode_json_response(Echo))
    with pytest.raises(Internal) as info:
        await client(Context(), Echo(s="a"))
    assert info.value.message == "the upstream's response could not be decoded"
    assert str(info.value.__cause__) == "Object missing required field `s`"  # for the logs


async def test_client_hooks_run_in_order_and_middleware_stacks(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    events: list[str] = []
    token: Key[str] = Key("token")

    async def handler(request: web.Request) -> web.Response:
        events.append(f"server saw {request.headers.get('Authorization')}")
        if request.headers.get("Authorization") != "Bearer t0k":
            return web.json_response(
                {"error": {"code": "UNAUTHENTICATED", "message": "who?"}}, status=401
            )
        return web.json_response({"s": "ok"}, headers={"X-Served-By": "raw"})

    def before(ctx: Context, headers: CIMultiDict[str]) -> Context:
        events.append("before")
        if token in ctx:
            headers["Authorization"] = f"Bearer {ctx[token]}"
        return ctx

    def after(ctx: Context, response: aiohttp.ClientResponse) -> Context:
        events.append(f"after {response.status} {response.headers.get('X-Served-By')}")
        return ctx

    def finalizer(ctx: Context, err: BaseException | None) -> None:
        events.append(f"finalizer {type(err).__name__ if err else None}")

    def middleware(next: Any) -> Any:
        async def endpoint(ctx: Context, request: Echo) -> Echo:
            events.append("middleware")
            return await next(ctx.with_value(token, "t0k"), request)  # type: ignore[no-any-return]

        return endpoint

    app = web.Application()
    app.router.add_post("/x", handler)
    url = await serve_app(app)
    client = Client(
        session,
        "POST",
        url / "x",
        encode_json_request,
        decode_json_response(Echo),
        before=[before],
        after=[after],
        finalizer=[finalizer],
    )
    assert await chain(middleware)(client)(Context(), Echo(s="a")) == Echo(s="ok")
    assert events == [
        "middleware",
        "before",
        "server saw Bearer t0k",
        "after 200 raw",
        "finalizer None",
    ]
    events.clear()
    with pytest.raises(KitError) as info:
        await client(Context(), Echo(s="a"))
    assert info.value.code is Code.UNAUTHENTICATED
    assert events == ["before", "server saw None", "after 401 None", "finalizer Unauthenticated"]


async def test_expired_context_is_not_sent(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    hits: list[str] = []
    finals: list[BaseException | None] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({"s": "x"})

    app = web.Application()
    app.router.add_post("/x", handler)
    url = await serve_app(app)
    client = Client(
        session,
        "POST",
        url / "x",
        encode_json_request,
        decode_json_response(Echo),
        finalizer=[lambda ctx, err: finals.append(err)],
    )
    with pytest.raises(DeadlineExceeded) as info:
        await client(Context().with_timeout(0), Echo(s="a"))
    assert info.value.message == "deadline exceeded before the request was sent"
    assert hits == []
    assert len(finals) == 1
    assert isinstance(finals[0], DeadlineExceeded)
