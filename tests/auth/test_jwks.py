"""The JWKS key source against a real aiohttp JWKS server on loopback."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from kitpy import Code, Context, DeadlineExceeded, Unavailable
from kitpy.auth import TOKEN, errors
from kitpy.auth.jwt import jwt_parser
from kitpy.auth.jwt.jwks import JWKS
from kitpy.auth.jwt.parser import JWTParser
from kitpy.testing import FakeClock
from tests.auth.jwks_server import JWKSServer, jwk_for, serve_jwks
from tests.auth.tokens import AUDIENCE, KID, Algo, good_claims
from tests.servers import free_port

ASYMMETRIC = ("RS256", "ES256", "EdDSA")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def jwks_server(algos: dict[str, Algo]) -> AsyncIterator[JWKSServer]:
    async with serve_jwks(jwk_for(algos["RS256"], KID)) as server:
        yield server


def parser_for(keys: JWKS, *algorithms: str) -> JWTParser[dict[str, Any]]:
    return jwt_parser(keys, algorithms=list(algorithms or ASYMMETRIC), audience=AUDIENCE)


class Recorder:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, ctx: Context, request: None) -> str:
        self.calls += 1
        return "ok"


async def verify(parser: JWTParser[Any], token: str, *, budget: float = 5.0) -> Recorder:
    ep = Recorder()
    ctx = Context().with_timeout(budget).with_value(TOKEN, token)
    async with asyncio.timeout(10):
        assert await parser(ep)(ctx, None) == "ok"
    assert ep.calls == 1
    return ep


async def rejected(parser: JWTParser[Any], token: str, *, budget: float = 5.0) -> BaseException:
    ep = Recorder()
    ctx = Context().with_timeout(budget).with_value(TOKEN, token)
    async with asyncio.timeout(10):
        try:
            await parser(ep)(ctx, None)
        except Exception as exc:
            assert ep.calls == 0
            return exc
    raise AssertionError("token was accepted")


@pytest.mark.parametrize("name", ASYMMETRIC)
async def test_fetches_once_and_verifies(
    name: str, algos: dict[str, Algo], session: aiohttp.ClientSession
) -> None:
    a = algos[name]
    async with serve_jwks(jwk_for(a, "a1")) as server:
        keys = JWKS(server.url, session=session)
        parser = parser_for(keys)
        await verify(parser, a.sign(good_claims(), kid="a1"))
        await verify(parser, a.sign(good_claims(jti="2"), kid="a1"))
        assert server.hits == keys.fetches == 1


async def test_concurrent_first_requests_share_one_fetch(
    algos: dict[str, Algo], jwks_server: JWKSServer, session: aiohttp.ClientSession
) -> None:
    keys = JWKS(jwks_server.url, session=session)
    parser = parser_for(keys)
    a = algos["RS256"]
    tokens = [a.sign(good_claims(jti=str(i))) for i in range(20)]
    await asyncio.gather(*(verify(parser, t) for t in tokens))
    assert jwks_server.hits == 1


async def test_rotation_unknown_kid_triggers_refresh(
    algos: dict[str, Algo], jwks_server: JWKSServer, session: aiohttp.ClientSession
) -> None:
    clock = FakeClock()
    keys = JWKS(jwks_server.url, session=session, cooldown=30, clock=clock)
    parser = parser_for(keys)
    await verify(parser, algos["RS256"].sign(good_claims()))
    jwks_server.keys.append(jwk_for(algos["ES256"], "k2"))  # the issuer rotates
    clock.advance(31)
    await verify(parser, algos["ES256"].sign(good_claims(), kid="k2"))
    assert jwks_server.hits == 2


async def test_flood_of_unknown_kids_fetches_at_most_once_per_cooldown(
    algos: dict[str, Algo], jwks_server: JWKSServer, session: aiohttp.ClientSession
) -> None:
    clock = FakeClock()
    keys = JWKS(jwks_server.url, session=session, cooldown=30, clock=clock)
    parser = parser_for(keys)
    a = algos["RS256"]
    await verify(parser, a.sign(good_claims()))
    assert jwks_server.hits == 1

    async def flood(n: int) -> list[BaseException]:
        tokens = [a.sign(good_claims(), kid=uuid.uuid4().hex) for _ in range(n)]
        return await asyncio.gather(*(rejected(parser, t) for t in tokens))

    # within the cooldown of the first fetch: no fetch at all
    assert all(type(e) is errors.UnknownKey for e in await flood(30))
    assert jwks_server.hits == 1
    # cooldown over: a concurrent flood causes exactly one fetch
    clock.advance(30)
    assert all(type(e) is errors.UnknownKey for e in await flood(30))
    assert jwks_server.hits == 2
    # and a sequential flood right after, none
    for _ in range(20):
        assert type(await rejected(parser, a.sign(good_claims(), kid=uuid.uuid4().hex))) is (
            errors.UnknownKey
        )
    assert jwks_server.hits == 2
    # a known kid still verifies during the flood
    await verify(parser, a.sign(good_claims(jti="still-fine")))


@pytest.mark.parametrize("mode", ["garbage", "not_jwks", "error", "huge"])
async def test_bad_jwks_without_keys_is_unavailable(
    mode: str, algos: dict[str, Algo], jwks_server: JWKSServer, session: aiohttp.ClientSession
) -> None:
    jwks_server.mode = mode
    keys = JWKS(jwks_server.url, session=session, max_bytes=1 << 20)
    exc = await rejected(parser_for(keys), algos["RS256"].sign(good_claims()))
    assert type(exc) is Unavailable
    assert isinstance(exc, Unavailable)
    assert exc.code is Code.UNAVAILABLE
    assert exc.message == "signing keys are unavailable"
    assert keys.last_error is not None


async def test_jwks_server_down_is_unavailable_and_does_not_hang(
    algos: dict[str, Algo], session: aiohttp.ClientSession
) -> None:
    keys = JWKS(f"http://127.0.0.1:{free_port()}/jwks.json", session=session, fetch_timeout=2)
    parser = parser_for(keys)
    exc = await rejected(parser, algos["RS256"].sign(good_claims()))
    assert type(exc) is Unavailable
    assert isinstance(keys.last_error, aiohttp.ClientConnectionError)
    # within the cooldown the next request does not even try
    assert type(await rejected(parser, algos["RS256"].sign(good_claims()))) is Unavailable
    assert keys.fetches == 1


async def test_slow_jwks_is_bounded_by_the_context_deadline(
    algos: dict[str, Algo], jwks_server: JWKSServer, session: aiohttp.ClientSession
) -> None:
    jwks_server.mode = "slow"
    keys = JWKS(jwks_server.url, session=session, fetch_timeout=20)
    try:
        exc = await rejected(parser_for(keys), algos["RS256"].sign(good_claims()), budget=0.2)
        assert type(exc) is DeadlineExceeded
    finally:
        await keys.close()


async def test_slow_jwks_is_bounded_by_fetch_timeout_without_deadline(
    algos: dict[str, Algo], jwks_server: JWKSServer, session: aiohttp.ClientSession
) -> None:
    jwks_server.mode = "slow"
    keys = JWKS(jwks_server.url, session=session, fetch_timeout=0.2)
    ep = Recorder()
    ctx = Context().with_value(TOKEN, algos["RS256"].sign(good_claims()))
    with pytest.raises(Unavailable):
        async with asyncio.timeout(10):
            await parser_for(keys)(ep)(ctx, None)
    assert isinstance(keys.last_error, TimeoutError)


async def test_stale_keys_survive_a_failed_refresh(
    algos: dict[str, Algo], jwks_server: JWKSServer, session: aiohttp.ClientSession
) -> None:
    clock = FakeClock()
    keys = JWKS(jwks_server.url, session=session, max_age=60, cooldown=10, clock=clock)
    parser = parser_for(keys)
    a = algos["RS256"]
    await verify(parser, a.sign(good_claims()))
    jwks_server.mode = "garbage"
    clock.advance(61)  # keys are due a refresh, which fails
    await verify(parser, a.sign(good_claims(jti="b")))
    assert jwks_server.hits == 2
    assert keys.last_error is not None
    assert type(await rejected(parser, a.sign(good_claims(), kid="other"))) is errors.UnknownKey


async def test_max_age_refreshes_and_drops_removed_keys(
    algos: dict[str, Algo], jwks_server: JWKSServer, session: aiohttp.ClientSession
) -> None:
    clock = FakeClock()
    keys = JWKS(jwks_server.url, session=session, max_age=60, cooldown=10, clock=clock)
    parser = parser_for(keys)
    await verify(parser, algos["RS256"].sign(good_claims()))
    jwks_server.keys = [jwk_for(algos["ES256"], "k2")]  # k1 revoked
    clock.advance(61)
    exc = await rejected(parser, algos["RS256"].sign(good_claims(jti="new")))
    assert type(exc) is errors.UnknownKey
    assert jwks_server.hits == 2
    await verify(parser, algos["ES256"].sign(good_claims(), kid="k2"))


async def test_jwk_alg_pins_the_algorithm(
    algos: dict[str, Algo], jwks_server: JWKSServer, session: aiohttp.ClientSession
) -> None:
    """The RS256-pinned JWK refuses a PS256 token even though PS256 is allowed."""
    keys = JWKS(jwks_server.url, session=session)
    parser = jwt_parser(keys, algorithms=["RS256", "PS256"], audience=AUDIENCE)
    import jwt as pyjwt

    token = pyjwt.encode(
        good_claims(), algos["RS256"].private, algorithm="PS256", headers={"kid": KID}
    )
    assert type(await rejected(parser, token)) is errors.AlgorithmNotAllowed
