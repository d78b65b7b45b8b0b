"""add_fallback: requests no route matches get kitpy's JSON 404/405, matched ones are untouched."""

from __future__ import annotations

import json

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from yarl import URL

from kitpy import Code, Context, Unimplemented
from kitpy.transport.http import (
    Client,
    MethodNotAllowed,
    Server,
    add_fallback,
    add_routes,
    decode_json,
    decode_json_response,
    encode_json,
    encode_json_request,
    response_status,
)

from .conftest import JSON, Echo, ServeApp, upper


async def user(request: web.Request) -> web.Response:
    return web.json_response({"id": request.match_info["id"]})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "SERVING"})


def make_app() -> web.Application:
    app = web.Application()
    add_routes(
        app,
        {
            "POST /upper": Server(upper, decode_json(Echo), encode_json),
            "GET /healthz": health,
            "GET /users/{id}": user,
        },
    )
    add_fallback(app)
    return app


async def test_unknown_path_is_a_json_404(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    url = await serve_app(make_app())
    async with session.get(url / "nope") as resp:
        assert resp.status == 404
        assert resp.headers["Content-Type"] == "application/json"
        assert await resp.read() == (
            b'{"error":{"code":"NOT_FOUND","message":"no route for GET /nope"}}'
        )
    async with session.delete(url) as resp:  # "/" itself, no route there
        assert resp.status == 404
        assert (await resp.json())["error"]["message"] == "no route for DELETE /"
    async with session.head(url / "nope") as resp:
        assert (resp.status, await resp.read()) == (404, b"")


async def test_wrong_method_is_a_json_405_with_allow(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    url = await serve_app(make_app())
    async with session.get(url / "upper") as resp:
        assert resp.status == 405
        assert resp.headers["Allow"] == "POST"
        assert resp.headers["Content-Type"] == "application/json"
        assert await resp.json() == {
            "error": {
                "code": "UNIMPLEMENTED",
                "message": "method GET is not allowed for /upper; allowed: POST",
            }
        }
    async with session.delete(url / "users" / "7") as resp:  # a dynamic route's methods
        assert (resp.status, resp.headers["Allow"]) == (405, "GET, HEAD")
        assert (await resp.json())["error"]["code"] == "UNIMPLEMENTED"


async def test_a_kitpy_client_reads_the_405_as_unimplemented(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    url = await serve_app(make_app())
    client = Client(
        session, "PUT", str(url / "upper"), encode_json_request, decode_json_response(Echo)
    )
    with pytest.raises(Unimplemented) as info:
        await client(Context(), Echo(s="x"))
    assert info.value.message == "method PUT is not allowed for /upper; allowed: POST"


async def test_matched_routes_are_served_as_before(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    url = await serve_app(make_app())
    async with session.post(url / "upper", data=b'{"s": "hi"}', headers=JSON) as resp:
        assert (resp.status, await resp.read()) == (200, b'{"s":"HI"}')
    async with session.post(url / "upper", data=b"{bad", headers=JSON) as resp:
        assert (resp.status, (await resp.json())["error"]["code"]) == (400, "INVALID_ARGUMENT")
    async with session.get(url / "healthz") as resp:
        assert (resp.status, await resp.json()) == (200, {"status": "SERVING"})
    async with session.head(url / "healthz") as resp:  # add_get's HEAD route still answers
        assert (resp.status, await resp.read()) == (200, b"")


async def test_a_dynamic_route_wins_over_the_fallback(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    url = await serve_app(make_app())
    async with session.get(url / "users" / "42") as resp:
        assert (resp.status, await resp.json()) == (200, {"id": "42"})
    async with session.get(url / "users" / "42" / "extra") as resp:
        assert (resp.status, (await resp.json())["error"]["code"]) == (404, "NOT_FOUND")


async def test_routes_under_their_own_prefix_may_come_after_it(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    app = make_app()
    app.router.add_get("/metrics", health)  # as the template's __main__ adds /metrics
    url = await serve_app(app)
    async with session.get(url / "metrics") as resp:
        assert resp.status == 200


async def test_root_keyed_routes_added_after_it_are_not_shadowed(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    app = make_app()
    app.router.add_get("/", health)  # "/" and "/{name}" share the catch-all's index key
    app.router.add_get("/{name}", user_named)
    url = await serve_app(app)
    async with session.get(url / "") as resp:
        assert resp.status == 200
        assert await resp.json() == {"status": "SERVING"}
    async with session.get(url / "ada") as resp:
        assert resp.status == 200
        assert await resp.json() == {"name": "ada"}
    async with session.post(url / "ada") as resp:  # still a 405 from the fallback
        assert resp.status == 405
        assert resp.headers["Allow"] == "GET, HEAD"
    async with session.get(url / "no" / "such") as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "NOT_FOUND"


async def user_named(request: web.Request) -> web.Response:
    return web.json_response({"name": request.match_info["name"]})


@pytest.mark.parametrize(
    "raw_path",
    [
        "/%FF%FE/x",  # percent-encoded bytes that are not UTF-8
        "/%ED%A0%80",  # an encoded UTF-16 surrogate
        "/a%00b",
        "/caf%C3%A9/" + "%E2%82%AC" * 40,
        "/" + "a" * 5000,
    ],
)
async def test_weird_paths_get_a_json_404_never_a_500(
    raw_path: str, serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    url = await serve_app(make_app())
    async with session.get(URL(str(url).rstrip("/") + raw_path, encoded=True)) as resp:
        assert resp.status == 404
        body = json.loads(await resp.read())  # valid UTF-8 JSON
    assert body["error"]["code"] == "NOT_FOUND"
    message = body["error"]["message"]
    assert message.startswith("no route for GET /")
    assert len(message) <= len("no route for GET ") + 200 + len("...")


async def test_surrogate_escaped_path_is_escaped_in_the_json() -> None:
    # aiohttp's C parser rejects raw non-ASCII bytes in the request line with a 400
    # before routing; its pure-Python parser hands them over surrogate-escaped.
    app = web.Application()
    route = add_fallback(app)
    request = make_mocked_request("GET", "/", app=app).clone(
        rel_url=URL.build(path="/\udcff\udcfe/" + "é" * 300, encoded=True)  # clipped at 200
    )
    response = await route.handler(request)
    assert isinstance(response, web.Response)
    assert isinstance(response.body, bytes)
    assert response.status == 404
    message = json.loads(response.body)["error"]["message"]
    assert message == "no route for GET /\\udcff\\udcfe/" + "é" * 196 + "..."


async def test_a_sub_application_has_its_own_fallback(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    sub = web.Application()
    add_routes(sub, {"POST /upper": Server(upper, decode_json(Echo), encode_json)})
    add_fallback(sub)
    app = make_app()
    app.add_subapp("/v2", sub)
    url = await serve_app(app)
    async with session.get(url / "v2" / "nope") as resp:
        assert (resp.status, (await resp.json())["error"]["code"]) == (404, "NOT_FOUND")
    async with session.get(url / "v2" / "upper") as resp:
        assert (resp.status, resp.headers["Allow"]) == (405, "POST")
    async with session.post(url / "v2" / "upper", data=b'{"s": "a"}', headers=JSON) as resp:
        assert (resp.status, await resp.read()) == (200, b'{"s":"A"}')


def test_adding_it_twice_raises() -> None:
    app = make_app()
    with pytest.raises(RuntimeError, match="already called"):
        add_fallback(app)
    assert add_fallback(web.Application()) is not None  # another app is fine


def test_method_not_allowed_is_unimplemented_sent_as_405() -> None:
    err = MethodNotAllowed("no", headers={"Allow": "GET"})
    assert isinstance(err, Unimplemented)
    assert err.code is Code.UNIMPLEMENTED
    assert response_status(err) == 405
    assert response_status(Unimplemented("no")) == 501
