"""Auth over real HTTP: kitpy's aiohttp Server on 127.0.0.1, port 0, real requests.

The whole hostile-token matrix, for HS256, RS256, ES256 and EdDSA: every bad
token gets exactly 401 with the JSON error body and ``WWW-Authenticate``, and
the service endpoint is never called.  Plus basic auth, scopes (403), and the
client side: ``jwt_signer`` + ``context_to_http`` on kitpy's HTTP Client.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from kitpy import Context, PermissionDenied, Unauthenticated, chain
from kitpy.auth import (
    BASIC_USER,
    CLAIMS,
    basic_auth,
    basic_http_to_context,
    context_to_http,
    http_to_context,
    require_scopes,
)
from kitpy.auth.jwt import KeySet, jwt_parser, jwt_signer
from kitpy.auth.jwt.jwks import JWKS
from kitpy.transport.http import (
    Client,
    Server,
    decode_json,
    decode_json_response,
    encode_json,
    encode_json_request,
)
from tests.auth.jwks_server import jwk_for, serve_jwks
from tests.auth.tokens import AUDIENCE, CASE_IDS, CASES, ISSUER, KID, Algo, Case, good_claims
from tests.servers import free_port


@dataclass(frozen=True)
class Echo:
    s: str


@dataclass(frozen=True)
class Reply:
    s: str
    who: str


@dataclass
class Service:
    """The protected service: counts calls so a test can prove it never ran."""

    url: str
    calls: int = 0


async def _start(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


@pytest.fixture
async def service(algo: Algo) -> AsyncIterator[Service]:
    svc = Service(url="")

    async def echo(ctx: Context, request: Echo) -> Reply:
        svc.calls += 1
        who = ctx[CLAIMS]["sub"] if CLAIMS in ctx else ctx[BASIC_USER]
        return Reply(s=request.s, who=who)

    parser = jwt_parser(
        KeySet({KID: algo.public}), algorithms=[algo.name], audience=AUDIENCE, issuer=ISSUER,
        leeway=5, required_claims=["sub"],
    )  # fmt: skip
    decode = decode_json(Echo)
    app = web.Application()
    app.router.add_post(
        "/echo", Server(parser(echo), decode, encode_json, before=[http_to_context])
    )
    admin = chain(parser, require_scopes("strings:admin"))(echo)
    app.router.add_post("/admin", Server(admin, decode, encode_json, before=[http_to_context]))
    guarded = basic_auth("ada", "pässwörd", realm="strings")(echo)
    basic_before = [basic_http_to_context]
    app.router.add_post("/basic", Server(guarded, decode, encode_json, before=basic_before))
    runner, svc.url = await _start(app)
    try:
        yield svc
    finally:
        await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:
        yield s


async def post(
    session: aiohttp.ClientSession, url: str, authorization: str | None
) -> tuple[int, dict[str, Any], str | None]:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with session.post(url, json={"s": "hi"}, headers=headers) as response:
        body = await response.read()
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = {"raw": body.decode(errors="replace")}
        return response.status, parsed, response.headers.get("WWW-Authenticate")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
async def test_hostile_matrix_over_http(
    algo: Algo, case: Case, service: Service, session: aiohttp.ClientSession
) -> None:
    token = case.build(algo)
    if case.id == "one_megabyte":
        # aiohttp's server refuses a header over 8190 bytes itself, before kitpy runs.
        status, body, _ = await post(session, f"{service.url}/echo", f"Bearer {token}")
        assert status == 400
        assert "more than 8190 bytes" in body["raw"]
        assert service.calls == 0
        return
    status, body, challenge = await post(session, f"{service.url}/echo", f"Bearer {token}")
    if case.error is None:
        assert (status, body) == (200, {"s": "hi", "who": "ada"})
        assert service.calls == 1
        return
    assert status == 401
    assert body == {
        "error": {
            "code": "UNAUTHENTICATED",
            "message": case.error.default_message,
            "details": {"reason": case.error.reason},
        }
    }
    assert challenge == 'Bearer error="invalid_token"'
    assert service.calls == 0


@pytest.mark.parametrize(
    "authorization", [None, "Basic dXNlcjpwdw==", "Bearer", "Token abc", "bearer    "]
)
async def test_missing_or_other_scheme_is_401_missing(
    authorization: str | None, service: Service, session: aiohttp.ClientSession
) -> None:
    status, body, challenge = await post(session, f"{service.url}/echo", authorization)
    assert status == 401
    assert body["error"]["details"] == {"reason": "missing"}
    assert challenge == "Bearer"
    assert service.calls == 0


async def test_scheme_is_case_insensitive(
    algo: Algo, service: Service, session: aiohttp.ClientSession
) -> None:
    status, _, _ = await post(session, f"{service.url}/echo", f"bEARer {algo.sign(good_claims())}")
    assert status == 200
    assert service.calls == 1


async def test_missing_scope_is_403(
    algo: Algo, service: Service, session: aiohttp.ClientSession
) -> None:
    url = f"{service.url}/admin"
    status, body, challenge = await post(session, url, f"Bearer {algo.sign(good_claims())}")
    assert status == 403
    assert body["error"]["code"] == "PERMISSION_DENIED"
    assert challenge == 'Bearer error="insufficient_scope"'
    assert service.calls == 0
    admin = algo.sign(good_claims(scope="strings:read strings:admin"))
    assert (await post(session, url, f"Bearer {admin}"))[0] == 200
    assert service.calls == 1


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_basic_auth_over_http(service: Service, session: aiohttp.ClientSession) -> None:
    url = f"{service.url}/basic"
    for wrong in (None, _basic("ada", "nope"), "Basic %%%", "Bearer x"):
        status, body, challenge = await post(session, url, wrong)
        assert status == 401
        assert body["error"]["message"] == "invalid or missing credentials"
        assert challenge == 'Basic realm="strings", charset="UTF-8"'
    assert service.calls == 0
    status, body, _ = await post(session, url, _basic("ada", "pässwörd"))
    assert (status, body) == (200, {"s": "hi", "who": "ada"})


async def test_signer_and_client_hook_round_trip(
    algo: Algo, service: Service, session: aiohttp.ClientSession
) -> None:
    claims = {"sub": "cli", "aud": AUDIENCE, "iss": ISSUER}
    signer = jwt_signer(algo.private, algorithm=algo.name, kid=KID, claims=claims)
    client = Client(
        session, "POST", f"{service.url}/echo", encode_json_request, decode_json_response(Reply),
        before=[context_to_http],
    )  # fmt: skip
    call = signer(client)
    ctx = Context().with_timeout(5)
    assert await call(ctx, Echo(s="a")) == Reply(s="a", who="cli")
    assert await call(ctx, Echo(s="b")) == Reply(s="b", who="cli")
    assert service.calls == 2
    # without the signer the client sends no token: the server's 401 comes back as Unauthenticated
    with pytest.raises(Unauthenticated):
        await client(ctx, Echo(s="c"))
    wrong_audience = jwt_signer(algo.private, algorithm=algo.name, kid=KID, claims={"sub": "x"})
    with pytest.raises(Unauthenticated):
        await wrong_audience(client)(ctx, Echo(s="d"))
    admin_client = Client(
        session, "POST", f"{service.url}/admin", encode_json_request, decode_json_response(Reply),
        before=[context_to_http],
    )  # fmt: skip
    with pytest.raises(PermissionDenied):
        await signer(admin_client)(ctx, Echo(s="e"))
    assert service.calls == 2


async def _jwks_app(keys: JWKS, calls: list[str]) -> tuple[web.AppRunner, str]:
    async def echo(ctx: Context, request: Echo) -> Reply:
        calls.append(request.s)
        return Reply(s=request.s, who=ctx[CLAIMS]["sub"])

    parser = jwt_parser(keys, algorithms=["RS256", "ES256", "EdDSA"], audience=AUDIENCE)
    app = web.Application()
    handler = Server(parser(echo), decode_json(Echo), encode_json, before=[http_to_context])
    app.router.add_post("/echo", handler)
    return await _start(app)


async def test_jwks_down_is_503_and_slow_jwks_is_bounded_by_the_callers_deadline(
    algos: dict[str, Algo], session: aiohttp.ClientSession
) -> None:
    token = algos["RS256"].sign(good_claims())
    calls: list[str] = []
    down = JWKS(f"http://127.0.0.1:{free_port()}/jwks.json", session=session, fetch_timeout=2)
    runner, url = await _jwks_app(down, calls)
    try:
        status, body, _ = await post(session, f"{url}/echo", f"Bearer {token}")
        assert status == 503
        assert body["error"] == {"code": "UNAVAILABLE", "message": "signing keys are unavailable"}
    finally:
        await runner.cleanup()

    async with serve_jwks(jwk_for(algos["RS256"], KID)) as jwks_server:
        jwks_server.mode = "slow"
        slow = JWKS(jwks_server.url, session=session, fetch_timeout=20)
        runner, url = await _jwks_app(slow, calls)
        try:
            headers = {"Authorization": f"Bearer {token}", "X-Timeout-Ms": "300"}
            async with session.post(f"{url}/echo", json={"s": "x"}, headers=headers) as response:
                assert response.status == 504
                assert (await response.json())["error"]["code"] == "DEADLINE_EXCEEDED"
        finally:
            await slow.close()
            await runner.cleanup()
    assert calls == []
