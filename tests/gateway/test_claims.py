"""Claims the gateway verified, forwarded to upstreams signed (kitpy.gateway.claims).

Through a real Gateway (:class:`~tests.gateway.test_app.GatewayRig`): the upstream gets
``X-Gateway-Claims`` (gRPC: ``x-gateway-claims``) that ``claims_parser`` accepts, and never a
caller's own.  Upstreams check it the way an application would: a kitpy HTTP Server and
examples/stringsvc's kitpy gRPC Server with ``*_claims_to_context`` and ``parser.authenticate``;
a raw grpc.aio servicer shows the metadata as it arrives.  :class:`ClaimsSigner`'s cache and
key rules are checked directly, with an injected clock.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web

from examples.stringsvc.transport_grpc import SERVICE
from kitpy.auth.jwt import CLAIMS, JWTParser
from kitpy.context import Context
from kitpy.errors import Code, KitError
from kitpy.gateway import ClaimsSigner, Route, RouteTable, Upstream, claims_parser
from kitpy.gateway.claims import grpc_claims_to_context, http_claims_to_context
from kitpy.transport.http import Server
from tests.gateway.rig import (
    JSON,
    UPPERCASE,
    GatewayRig,
    bearer,
    call_uppercase,
    caller_token,
    get,
    stringsvc_descriptor_set,
    table,
)

CLAIMS_SECRET = "gateway-and-upstreams-share-this-32B+"
"""The secret the gateway signs forwarded claims with (``claims_secret``)."""
OTHER_SECRET = "not-the-gateways-secret-but-32-bytes"
CLAIMS_HEADER = "X-Gateway-Claims"


async def whoami(ctx: Context, request: None) -> dict[str, Any]:
    """An upstream endpoint answering with the claims the gateway vouched for."""
    return ctx[CLAIMS]


async def no_body(ctx: Context, request: web.Request) -> None:
    return None


def encode_claims(ctx: Context, claims: dict[str, Any]) -> web.Response:
    return web.json_response({key: claims[key] for key in ("sub", "iss", "aud")})


async def verified(token: str | bytes, *, secret: str = CLAIMS_SECRET, audience: str) -> Any:
    """The claims in a forwarded token, as an upstream called ``audience`` verifies it."""
    text = token.decode() if isinstance(token, bytes) else token
    return await claims_parser(secret, audience=audience).verify(Context(), text)


async def refusal(token: str, *, secret: str = CLAIMS_SECRET, audience: str = "users") -> Code:
    """The code an upstream called ``audience`` refuses ``token`` with (it must refuse it)."""
    try:
        await verified(token, secret=secret, audience=audience)
    except KitError as exc:
        return exc.code
    raise AssertionError("the token was accepted")


# -- HTTP upstreams ----------------------------------------------------------------------------


async def test_an_http_upstream_gets_the_callers_claims_and_never_a_callers_header(
    rig: GatewayRig, parser: JWTParser[Any]
) -> None:
    users = Server(
        whoami,
        no_body,
        encode_claims,
        before=[http_claims_to_context],
        authenticate=claims_parser(CLAIMS_SECRET, audience="users").authenticate,
    )
    up = await rig.upstream(users)
    routes = table(
        Route(prefix="/users", upstream="users", auth="jwt"),
        Route(prefix="/open", upstream="users"),
        users=up.address,
    )
    _, url = await rig.gateway(routes, jwt=parser, claims=ClaimsSigner(CLAIMS_SECRET))
    forged = jwt.encode(
        {"sub": "root", "iss": "kitpy-gateway", "aud": "users", "exp": int(time.time()) + 60},
        OTHER_SECRET,
        algorithm="HS256",
    )

    headers = {**bearer(caller_token("ada")), CLAIMS_HEADER: forged}
    status, _, body = await get(rig.client, url / "users", headers)
    assert (status, body) == (200, {"sub": "ada", "iss": "kitpy-gateway", "aud": "users"})
    sent = up.seen[0].headers.getall(CLAIMS_HEADER)
    assert len(sent) == 1
    assert sent[0] != forged
    assert (await verified(sent[0], audience="users"))["sub"] == "ada"

    # a route without auth sends no claims: neither a forged header nor a replayed real one
    for header in (forged, sent[0]):
        status, _, body = await get(rig.client, url / "open", {CLAIMS_HEADER: header})
        assert status == 401
        assert body["error"]["code"] == "UNAUTHENTICATED"
        assert CLAIMS_HEADER not in up.seen[-1].headers


async def test_without_a_signer_no_claims_go_upstream(
    rig: GatewayRig, parser: JWTParser[Any]
) -> None:
    up = await rig.upstream()
    _, url = await rig.gateway(
        table(Route(prefix="/api", upstream="api", auth="jwt"), api=up.address), jwt=parser
    )
    headers = {**bearer(caller_token()), CLAIMS_HEADER: "from-the-caller"}
    assert (await get(rig.client, url / "api", headers))[0] == 200
    assert CLAIMS_HEADER not in up.seen[0].headers


async def test_claims_parser_refuses_tokens_not_signed_by_the_gateway_for_this_upstream() -> None:
    now = time.time()
    signer = ClaimsSigner(CLAIMS_SECRET, clock=lambda: now)
    token = signer.sign({"sub": "ada", "scope": "read"}, audience="users")
    claims = await verified(token, audience="users")
    assert (claims["sub"], claims["scope"], claims["iss"]) == ("ada", "read", "kitpy-gateway")

    assert await refusal(token, audience="orders") is Code.UNAUTHENTICATED  # another upstream's
    assert await refusal(token, secret=OTHER_SECRET) is Code.UNAUTHENTICATED  # another key
    assert await refusal(caller_token("ada")) is Code.UNAUTHENTICATED  # a caller's own token
    two_minutes_ago = ClaimsSigner(CLAIMS_SECRET, clock=lambda: now - 120)
    stale = two_minutes_ago.sign({"sub": "ada"}, audience="users")
    assert await refusal(stale) is Code.UNAUTHENTICATED  # past its lifetime


# -- gRPC upstreams behind Connect routes ------------------------------------------------------


async def test_a_kitpy_grpc_upstream_authenticates_callers_by_the_forwarded_claims(
    rig: GatewayRig, parser: JWTParser[Any]
) -> None:
    strings = await rig.stringsvc(
        before=[grpc_claims_to_context],
        authenticate=claims_parser(CLAIMS_SECRET, audience="strings").authenticate,
    )
    routes = table(
        Route(prefix=f"/{SERVICE}", upstream="strings", kind="connect", auth="jwt"),
        strings=strings,
    )
    _, url = await rig.gateway(routes, jwt=parser, claims=ClaimsSigner(CLAIMS_SECRET))
    status, _, body = await call_uppercase(rig.client, url, "hi", bearer(caller_token()))
    assert (status, body) == (200, {"v": "HI"})

    _, unsigned = await rig.gateway(routes, jwt=parser)  # a gateway that forwards no claims
    status, _, body = await call_uppercase(rig.client, unsigned, "hi", bearer(caller_token()))
    assert (status, body["code"]) == (401, "unauthenticated")  # refused by stringsvc itself


async def test_a_grpc_upstream_gets_the_claims_in_metadata_and_never_a_callers(
    rig: GatewayRig, parser: JWTParser[Any], tmp_path: Path
) -> None:
    strings = await rig.recording_stringsvc()
    routes = RouteTable(
        [
            Route(prefix=f"/{SERVICE}", upstream="strings", kind="connect", auth="jwt"),
            Route(prefix="/open", upstream="strings", kind="connect"),
        ],
        [
            Upstream(
                "strings",
                addresses=(strings.address,),
                descriptor_set=stringsvc_descriptor_set(tmp_path),
            )
        ],
    )
    _, url = await rig.gateway(routes, jwt=parser, claims=ClaimsSigner(CLAIMS_SECRET))
    forged = {CLAIMS_HEADER: "forged"}

    headers = {**bearer(caller_token("ada")), **forged}
    assert (await call_uppercase(rig.client, url, "hi", headers))[0] == 200
    sent = [value for key, value in strings.metadata[0] if key == "x-gateway-claims"]
    assert len(sent) == 1
    assert (await verified(sent[0], audience="strings"))["sub"] == "ada"

    # the open route serves the same method under another prefix: no claims at all
    async with rig.client.post(
        url / "open" / UPPERCASE, data=b'{"s": "hi"}', headers={**JSON, **forged}
    ) as response:
        assert response.status == 200
    assert "x-gateway-claims" not in dict(strings.metadata[1])


# -- the signer --------------------------------------------------------------------------------


def unverified_expiry(token: str) -> dict[str, Any]:
    """The claims of a gateway token for "users", its expiry unchecked (the clock is a fake)."""
    claims: dict[str, Any] = jwt.decode(
        token, CLAIMS_SECRET, algorithms=["HS256"], audience="users", options={"verify_exp": False}
    )
    return claims


def test_the_signer_reuses_a_token_for_three_quarters_of_its_life() -> None:
    now = [1_000_000.0]
    signer = ClaimsSigner(CLAIMS_SECRET, lifetime=60, clock=lambda: now[0])
    first = signer.sign({"sub": "ada"}, audience="users")
    claims = unverified_expiry(first)
    assert (claims["iat"], claims["exp"]) == (1_000_000, 1_000_060)

    now[0] += 44
    assert signer.sign({"sub": "ada"}, audience="users") == first
    assert signer.sign({"sub": "grace"}, audience="users") != first  # other claims
    assert signer.sign({"sub": "ada"}, audience="orders") != first  # another upstream
    # the caller's own time fields do not make another token: the gateway sets its own
    assert signer.sign({"sub": "ada", "exp": 1, "iat": 2, "iss": "me"}, audience="users") == first

    now[0] += 2  # 46 s old: past three quarters of 60 s
    renewed = signer.sign({"sub": "ada"}, audience="users")
    assert renewed != first
    claims = unverified_expiry(renewed)
    assert (claims["iat"], claims["exp"], claims["iss"]) == (1_000_046, 1_000_106, "kitpy-gateway")


def test_the_claims_secret_must_have_32_bytes() -> None:
    for short in ("s" * 31, b"s" * 31):
        with pytest.raises(ValueError, match="at least 32 bytes, got 31"):
            ClaimsSigner(short)
        with pytest.raises(ValueError, match="at least 32 bytes, got 31"):
            claims_parser(short, audience="users")
    ClaimsSigner("s" * 32)
    claims_parser(b"s" * 32, audience="users")
    with pytest.raises(ValueError, match="lifetime"):
        ClaimsSigner("s" * 32, lifetime=0)
    assert CLAIMS_SECRET not in repr(ClaimsSigner(CLAIMS_SECRET))
