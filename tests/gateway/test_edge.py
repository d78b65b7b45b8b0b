"""The gateway's edge policies (kitpy.gateway.edge) through a real Gateway: JWT on ``auth = "jwt"``
routes, per-client rate limits (in process, and shared through a real Redis), and CORS.

Gateways and upstreams are :class:`~tests.gateway.test_app.GatewayRig`'s: real sockets on
127.0.0.1, every wait bounded.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiohttp import web

from examples.stringsvc.transport_grpc import SERVICE
from kitpy.auth.jwt import JWTParser
from kitpy.config import Rejection
from kitpy.gateway import (
    Gateway,
    LiveRouteTable,
    LocalLimits,
    RedisLimits,
    Route,
    RouteTable,
    Upstream,
)
from tests.gateway.rig import (
    GatewayRig,
    bearer,
    call_uppercase,
    caller_token,
    get,
    no_resource_left_open,
    table,
)
from tests.servers import ServerProcess, free_port

APP = "https://app.example.com"


# -- JWT ---------------------------------------------------------------------------------------


async def test_a_jwt_route_serves_only_callers_with_a_valid_token(
    rig: GatewayRig, parser: JWTParser[Any]
) -> None:
    up = await rig.upstream()
    _, url = await rig.gateway(
        table(Route(prefix="/api", upstream="api", auth="jwt"), api=up.address), jwt=parser
    )
    refused = {
        "no token": {},
        "not a JWT": bearer("not-a-token"),
        "expired": bearer(caller_token(expires_in=-60)),
        "another key": bearer(caller_token(secret="someone-elses-secret-of-32-bytes!!")),
        "not bearer": {"Authorization": "Basic YWRhOnNlY3JldA=="},
    }
    for why, headers in refused.items():
        status, response, body = await get(rig.client, url / "api", headers)
        assert status == 401, why
        assert body["error"]["code"] == "UNAUTHENTICATED", why
        assert response["X-Request-Id"], why
    assert up.seen == []  # none of them was forwarded

    status, _, body = await get(rig.client, url / "api" / "x", bearer(caller_token()))
    assert (status, body) == (200, {"target": "/api/x"})
    assert up.seen[0].headers["Authorization"].startswith("Bearer ")  # passed on as it came


async def test_a_jwt_connect_route_answers_connect_unauthenticated(
    rig: GatewayRig, parser: JWTParser[Any]
) -> None:
    strings = await rig.stringsvc()
    _, url = await rig.gateway(
        table(
            Route(prefix=f"/{SERVICE}", upstream="strings", kind="connect", auth="jwt"),
            strings=strings,
        ),
        jwt=parser,
    )
    status, _, body = await call_uppercase(rig.client, url, "hi")
    assert (status, body["code"]) == (401, "unauthenticated")
    expired = bearer(caller_token(expires_in=-60))
    assert (await call_uppercase(rig.client, url, "hi", expired))[0] == 401
    status, _, body = await call_uppercase(rig.client, url, "hi", bearer(caller_token()))
    assert (status, body) == (200, {"v": "HI"})


async def test_a_jwt_route_is_refused_when_the_gateway_has_no_jwt_key(rig: GatewayRig) -> None:
    up = await rig.upstream()
    guarded = RouteTable(
        [Route(prefix="/api", upstream="api"), Route(prefix="/admin", upstream="api", auth="jwt")],
        [Upstream("api", addresses=(up.address,))],
    )
    with no_resource_left_open(), pytest.raises(ValueError, match="'\\* /admin' has auth = 'jwt'"):
        async with Gateway(guarded):
            pass

    rejected: list[Rejection] = []
    live = LiveRouteTable(
        table(Route(prefix="/api", upstream="api"), api=up.address), on_reject=rejected.append
    )
    gateway, url = await rig.gateway(live)
    assert live.set(guarded) is False  # refused by the gateway: not served unprotected
    assert "no JWT key configured" in str(rejected[0].reason)
    assert gateway.table.match("GET", "/admin") is None
    assert (await get(rig.client, url / "admin"))[0] == 404
    assert (await get(rig.client, url / "api"))[0] == 200  # the old table keeps serving


# -- rate limits -------------------------------------------------------------------------------

SLOW = 0.01
"""A route's rate: one request per 100 s for each caller, so a second one in a test is refused."""


async def test_local_limits_count_per_caller(rig: GatewayRig, parser: JWTParser[Any]) -> None:
    up = await rig.upstream()
    _, url = await rig.gateway(
        table(Route(prefix="/api", upstream="api", auth="jwt", rate_limit=SLOW), api=up.address),
        jwt=parser,
        limits=LocalLimits(),
    )
    ada, grace = bearer(caller_token("ada")), bearer(caller_token("grace"))
    assert (await get(rig.client, url / "api", ada))[0] == 200
    status, headers, body = await get(rig.client, url / "api", ada)
    assert status == 429
    assert headers["Retry-After"] == "100"
    assert body["error"]["code"] == "RESOURCE_EXHAUSTED"
    assert (await get(rig.client, url / "api", grace))[0] == 200  # another caller: its own bucket
    assert len(up.seen) == 2


async def test_without_auth_the_callers_address_is_limited(rig: GatewayRig) -> None:
    up = await rig.upstream()
    _, url = await rig.gateway(
        table(
            Route(prefix="/api", upstream="api", rate_limit=SLOW),
            Route(prefix="/free", upstream="api"),
            api=up.address,
        )
    )
    assert (await get(rig.client, url / "api"))[0] == 200
    assert (await get(rig.client, url / "api"))[0] == 429
    assert (await get(rig.client, url / "free"))[0] == 200  # a route without a limit


@pytest.mark.servers
async def test_redis_limits_are_shared_by_two_gateways(
    rig: GatewayRig, parser: JWTParser[Any], redis_server: ServerProcess
) -> None:
    up = await rig.upstream()
    routes = table(
        Route(prefix="/api", upstream="api", auth="jwt", rate_limit=SLOW), api=up.address
    )
    namespace = f"kitpy-test-{uuid.uuid4().hex}"
    urls = []
    for _ in range(2):
        limits = RedisLimits(f"redis://127.0.0.1:{redis_server.port}/0", namespace=namespace)
        rig.on_close(limits.close)
        urls.append((await rig.gateway(routes, jwt=parser, limits=limits))[1])
    first, second = urls
    ada = bearer(caller_token("ada"))

    assert (await get(rig.client, first / "api", ada))[0] == 200
    status, headers, body = await get(rig.client, second / "api", ada)
    assert (status, headers["Retry-After"]) == (429, "100")  # counted by the other gateway
    assert body["error"]["code"] == "RESOURCE_EXHAUSTED"
    assert (await get(rig.client, second / "api", bearer(caller_token("grace"))))[0] == 200
    assert len(up.seen) == 2


async def test_redis_limits_fail_open_while_redis_is_unreachable(
    rig: GatewayRig, parser: JWTParser[Any]
) -> None:
    up = await rig.upstream()
    errors: list[BaseException] = []
    limits = RedisLimits(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5, on_error=errors.append)
    rig.on_close(limits.close)
    _, url = await rig.gateway(
        table(Route(prefix="/api", upstream="api", auth="jwt", rate_limit=SLOW), api=up.address),
        jwt=parser,
        limits=limits,
    )
    ada = bearer(caller_token("ada"))
    for _ in range(3):  # past the limit: admitted all the same, while the limiter is down
        assert (await get(rig.client, url / "api", ada))[0] == 200
    assert len(errors) == 3
    assert len(up.seen) == 3


async def test_redis_limits_fail_closed_refuse_while_redis_is_down(
    rig: GatewayRig, parser: JWTParser[Any]
) -> None:
    up = await rig.upstream()
    limits = RedisLimits(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5, fail_open=False)
    rig.on_close(limits.close)
    _, url = await rig.gateway(
        table(Route(prefix="/api", upstream="api", auth="jwt", rate_limit=SLOW), api=up.address),
        jwt=parser,
        limits=limits,
    )
    status, _, body = await get(rig.client, url / "api", bearer(caller_token()))
    assert up.seen == []  # refused as over the limit: nothing reached the upstream
    assert (status, body["error"]["code"]) == (429, "RESOURCE_EXHAUSTED")


# -- CORS --------------------------------------------------------------------------------------


def preflight_headers(origin: str, method: str = "POST", asked: str = "") -> dict[str, str]:
    headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if asked:
        headers["Access-Control-Request-Headers"] = asked
    return headers


async def test_a_preflight_is_answered_by_the_gateway(rig: GatewayRig) -> None:
    up = await rig.upstream()
    _, url = await rig.gateway(
        table(
            Route("POST", "/api", upstream="api", cors_origins=(APP,)),
            Route(prefix="/any", upstream="api", cors_origins=(APP,)),
            api=up.address,
        )
    )
    asked = preflight_headers(APP, "POST", "Content-Type, Authorization")
    async with rig.client.options(url / "api" / "x", headers=asked) as response:
        assert response.status == 204
        headers = response.headers
        assert headers["Access-Control-Allow-Origin"] == APP
        assert headers["Access-Control-Allow-Methods"] == "POST"
        assert headers["Access-Control-Allow-Headers"] == "Content-Type, Authorization"
        assert headers["Access-Control-Max-Age"] == "600"
        assert headers["Vary"] == "Origin"
        assert headers["X-Request-Id"]

    async with rig.client.options(url / "any", headers=preflight_headers(APP, "PATCH")) as r:
        assert r.status == 204
        assert r.headers["Access-Control-Allow-Methods"] == "PATCH"  # a "*" route: as asked
        assert "Access-Control-Allow-Headers" not in r.headers

    evil = preflight_headers("https://evil.example", "POST")
    async with rig.client.options(url / "api", headers=evil) as response:
        assert response.status == 403
        assert (await response.json())["error"]["code"] == "PERMISSION_DENIED"
        assert "Access-Control-Allow-Origin" not in response.headers
        assert response.headers["X-Request-Id"]
    assert up.seen == []  # no preflight went upstream


async def test_answers_to_an_allowed_origin_carry_cors_headers(
    rig: GatewayRig, parser: JWTParser[Any]
) -> None:
    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for part in (b"one ", b"two"):
            await response.write(part)
        await response.write_eof()
        return response

    up = await rig.upstream(stream)
    _, url = await rig.gateway(
        table(
            Route(prefix="/api", upstream="api", cors_origins=(APP, "https://admin.example.com")),
            Route(prefix="/me", upstream="api", auth="jwt", rate_limit=SLOW, cors_origins=(APP,)),
            api=up.address,
        ),
        jwt=parser,
    )
    origin = {"Origin": APP}
    me = {**origin, **bearer(caller_token())}
    # a browser's preflight carries no token: the gateway answers it, before auth and limits
    for _ in range(2):
        async with rig.client.options(url / "me", headers=preflight_headers(APP, "GET")) as r:
            assert r.status == 204
    answers = {
        "streamed from upstream": await get(rig.client, url / "api", origin),
        "401 from the gateway": await get(rig.client, url / "me", origin),
        "200 with a token": await get(rig.client, url / "me", me),
        "429 from the gateway": await get(rig.client, url / "me", me),
    }
    assert [status for status, _, _ in answers.values()] == [200, 401, 200, 429]
    assert answers["streamed from upstream"][2] == "one two"
    for what, (_, headers, _) in answers.items():
        assert headers["Access-Control-Allow-Origin"] == APP, what
        assert headers.getall("Vary") == ["Origin"], what
        assert headers["Access-Control-Expose-Headers"] == "X-Request-Id, Retry-After", what

    _, headers, _ = await get(rig.client, url / "api", {"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in headers
    _, headers, _ = await get(rig.client, url / "api")  # not a cross-origin request
    assert "Access-Control-Allow-Origin" not in headers


async def test_connect_answers_to_an_allowed_origin_carry_cors_headers(rig: GatewayRig) -> None:
    strings = await rig.stringsvc()
    _, url = await rig.gateway(
        RouteTable(
            [Route(prefix=f"/{SERVICE}", upstream="strings", kind="connect", cors_origins=(APP,))],
            [Upstream("strings", addresses=(strings,))],
        )
    )
    origin = {"Origin": APP}
    reply = await call_uppercase(rig.client, url, "hi", origin)
    refused = await call_uppercase(rig.client, url, "", origin)  # stringsvc: empty string
    assert (reply[0], reply[2]) == (200, {"v": "HI"})
    assert refused[0] == 400
    for status, headers, _ in (reply, refused):
        assert headers["Access-Control-Allow-Origin"] == APP, status
        assert headers.getall("Vary") == ["Origin"], status
    _, headers, _ = await call_uppercase(rig.client, url, "hi", {"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in headers


async def test_a_star_origin_allows_any_origin(rig: GatewayRig) -> None:
    up = await rig.upstream()
    _, url = await rig.gateway(
        table(Route(prefix="/public", upstream="api", cors_origins=("*",)), api=up.address)
    )
    anywhere = "https://anywhere.example"
    async with rig.client.options(url / "public", headers=preflight_headers(anywhere)) as r:
        assert r.status == 204
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert "Vary" not in r.headers
    status, headers, _ = await get(rig.client, url / "public", {"Origin": anywhere})
    assert (status, headers["Access-Control-Allow-Origin"]) == (200, "*")
    assert "Vary" not in headers


async def test_a_route_without_cors_origins_adds_nothing(rig: GatewayRig) -> None:
    up = await rig.upstream()
    _, url = await rig.gateway(table(Route(prefix="/api", upstream="api"), api=up.address))
    async with rig.client.options(url / "api", headers=preflight_headers(APP)) as response:
        assert response.status == 200  # not answered by the gateway: proxied like any OPTIONS
        assert "Access-Control-Allow-Origin" not in response.headers
    assert [seen.method for seen in up.seen] == ["OPTIONS"]
    _, headers, _ = await get(rig.client, url / "api", {"Origin": APP})
    assert not [name for name in headers if name.lower().startswith("access-control-")]
    assert "Vary" not in headers
