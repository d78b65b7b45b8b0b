"""The JWT parser middleware, called directly: the hostile-token matrix, time rules, the cache."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, cast

import jwt
import pytest

from kitpy import Context, Key
from kitpy.auth import CLAIMS, TOKEN, errors
from kitpy.auth.jwt import KeySet, StaticKey, TokenCache, jwt_parser
from kitpy.auth.jwt.parser import JWTParser
from kitpy.testing import FakeClock
from tests.auth.tokens import (
    AUDIENCE,
    CASE_IDS,
    CASES,
    ISSUER,
    KID,
    Algo,
    Case,
    good_claims,
)

Calls = list[dict[str, Any]]


def make_parser(algo: Algo, source: Any = None, **options: Any) -> JWTParser[dict[str, Any]]:
    """The parser the matrix expects: KeySet {KID: key}, aud, iss, leeway 5 s, ``sub`` required."""
    settings: dict[str, Any] = {
        "algorithms": [algo.name],
        "audience": AUDIENCE,
        "issuer": ISSUER,
        "leeway": 5,
        "required_claims": ["sub"],
    }
    settings.update(options)
    return jwt_parser(source or KeySet({KID: algo.public}), **settings)


def recording(calls: Calls) -> Any:
    async def endpoint(ctx: Context, request: str) -> str:
        calls.append(ctx[CLAIMS])
        return "ok"

    return endpoint


async def call(parser: JWTParser[Any], token: str | None, calls: Calls) -> str:
    ctx = Context() if token is None else Context().with_value(TOKEN, token)
    result: str = await parser(recording(calls))(ctx, "req")
    return result


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
async def test_hostile_matrix(algo: Algo, case: Case) -> None:
    parser = make_parser(algo)
    calls: Calls = []
    token = case.build(algo)
    if case.error is None:
        assert await call(parser, token, calls) == "ok"
        assert calls[0]["sub"] == "ada"
        return
    with pytest.raises(errors.TokenError) as info:
        await call(parser, token, calls)
    assert type(info.value) is case.error
    assert info.value.code.name == "UNAUTHENTICATED"
    assert info.value.details == {"reason": case.error.reason}
    assert info.value.headers == {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    assert calls == []
    assert token not in parser.cache


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
async def test_hostile_matrix_static_key(algo: Algo, case: Case) -> None:
    """With one static key the ``kid`` is not consulted; every other verdict is the same."""
    parser = make_parser(algo, StaticKey(algo.public))
    calls: Calls = []
    expected = None if case.id == "unknown_kid" else case.error
    token = case.build(algo)
    if expected is None:
        assert await call(parser, token, calls) == "ok"
        return
    with pytest.raises(errors.TokenError) as info:
        await call(parser, token, calls)
    assert type(info.value) is expected
    assert calls == []


async def test_missing_token_is_401_with_bare_challenge(algos: dict[str, Algo]) -> None:
    calls: Calls = []
    with pytest.raises(errors.TokenMissing) as info:
        await call(make_parser(algos["HS256"]), None, calls)
    assert info.value.message == "missing bearer token"
    assert info.value.headers == {"WWW-Authenticate": "Bearer"}
    assert calls == []


async def test_error_messages_never_echo_the_token(algos: dict[str, Algo]) -> None:
    a = algos["RS256"]
    token = a.sign(good_claims(aud="secret-audience-name"))
    with pytest.raises(errors.TokenError) as info:
        await call(make_parser(a), token, [])
    text = f"{info.value.message} {info.value.details}"
    assert "secret-audience-name" not in text
    assert token not in text
    assert info.value.message == "token audience is not accepted"


# -- build-time checks ---------------------------------------------------------------


def test_algorithms_are_mandatory_and_never_none(algos: dict[str, Algo]) -> None:
    secret = algos["HS256"].public
    with pytest.raises(ValueError, match="at least one"):
        jwt_parser(secret, algorithms=[])
    with pytest.raises(ValueError, match="none"):
        jwt_parser(secret, algorithms=["HS256", "none"])
    with pytest.raises(TypeError, match="list of names"):
        jwt_parser(secret, algorithms="HS256")
    with pytest.raises(ValueError, match="unknown JWT algorithm 'HS257'"):
        jwt_parser(KeySet({}), algorithms=["HS257"])


def test_static_key_must_fit_every_algorithm(algos: dict[str, Algo]) -> None:
    rsa_public = algos["RS256"].public_pem
    with pytest.raises(ValueError, match="cannot verify HS256"):
        jwt_parser(rsa_public, algorithms=["RS256", "HS256"])
    with pytest.raises(ValueError, match="must be at least 32 bytes"):
        jwt_parser(b"too-short", algorithms=["HS256"])  # under pyjwt's 32-byte minimum
    parser = jwt_parser(rsa_public, algorithms=["RS256", "PS256"])
    assert parser.algorithms == ("RS256", "PS256")


async def test_pem_and_private_keys_are_accepted(algos: dict[str, Algo]) -> None:
    a = algos["ES256"]
    token = a.sign(good_claims())
    for key in (a.public_pem, a.public_pem.decode(), a.private, a.public):
        parser = make_parser(a, StaticKey(key))
        assert await call(parser, token, []) == "ok"


# -- time rules on a fake clock ------------------------------------------------------


def parser_at(a: Algo, clock: FakeClock, **options: Any) -> JWTParser[dict[str, Any]]:
    return make_parser(a, clock=clock, **options)


@pytest.mark.parametrize(
    ("offset", "ok"),
    [(-5.0, True), (-4.999, True), (0.0, True), (4.999, True), (5.0, False), (6.0, False)],
)
async def test_exp_leeway_edges(algos: dict[str, Algo], offset: float, ok: bool) -> None:
    """exp = T: valid while now < T + leeway (pyjwt's rule), with and without the cache."""
    a = algos["HS256"]
    clock = FakeClock(start=2_000_000_000.0)
    token = a.sign(good_claims(iat=None, exp=2_000_000_000))
    for cache_size in (0, 10):
        clock.now = 2_000_000_000.0 + offset
        parser = parser_at(a, clock, cache_size=cache_size)
        if ok:
            assert await call(parser, token, []) == "ok"
        else:
            with pytest.raises(errors.TokenExpired):
                await call(parser, token, [])


@pytest.mark.parametrize("claim", ["nbf", "iat"])
@pytest.mark.parametrize(("offset", "ok"), [(-5.0, True), (-5.001, False), (0.0, True)])
async def test_nbf_iat_leeway_edges(
    algos: dict[str, Algo], claim: str, offset: float, ok: bool
) -> None:
    """nbf/iat = T: valid from now >= T - leeway."""
    a = algos["HS256"]
    clock = FakeClock(start=2_000_000_000.0 + offset)
    claims = good_claims(iat=None, exp=2_000_000_600)
    claims[claim] = 2_000_000_000
    token = a.sign(claims)
    parser = parser_at(a, clock)
    if ok:
        assert await call(parser, token, []) == "ok"
    else:
        with pytest.raises(errors.TokenNotYetValid):
            await call(parser, token, [])


async def test_leeway_zero_means_exact(algos: dict[str, Algo]) -> None:
    a = algos["HS256"]
    clock = FakeClock(start=1_999_999_999.5)
    token = a.sign(good_claims(iat=None, exp=2_000_000_000))
    parser = parser_at(a, clock, leeway=0)
    assert await call(parser, token, []) == "ok"
    clock.now = 2_000_000_000.0
    with pytest.raises(errors.TokenExpired):
        await call(parser, token, [])


# -- exp is required unless the parser opts out ---------------------------------------


async def test_a_token_without_exp_is_refused_with_a_message_saying_why(
    algos: dict[str, Algo],
) -> None:
    a = algos["HS256"]
    forever = a.sign(good_claims(exp=None))
    with pytest.raises(errors.MissingExpiry) as info:
        await call(make_parser(a), forever, [])
    assert info.value.message == "token has no exp claim (an expiry is required)"
    assert info.value.details == {"reason": "missing_exp"}
    # the signature is checked first: a forged token learns nothing about its claims
    forged = a.sign(good_claims(exp=None), key=a.other_private)
    with pytest.raises(errors.BadSignature):
        await call(make_parser(a), forged, [])


async def test_opting_out_of_exp_is_explicit(algos: dict[str, Algo]) -> None:
    a = algos["HS256"]
    forever = a.sign(good_claims(exp=None))
    calls: Calls = []
    assert await call(make_parser(a, require_exp=False), forever, calls) == "ok"
    assert "exp" not in calls[0]
    # naming exp in required_claims keeps it required (with the same error) even then
    strict = make_parser(a, require_exp=False, required_claims=["sub", "exp"])
    with pytest.raises(errors.MissingExpiry):
        await call(strict, forever, [])
    # other required claims do not replace the exp requirement
    with_jti = a.sign(good_claims(exp=None, jti="j"))
    with pytest.raises(errors.MissingExpiry):
        await call(make_parser(a, required_claims=["sub", "jti"]), with_jti, [])


# -- authenticate: the same check as a Server option ---------------------------------


async def test_authenticate_returns_the_context_with_the_claims(algos: dict[str, Algo]) -> None:
    a = algos["HS256"]
    parser = make_parser(a)
    token = a.sign(good_claims())
    ctx = await parser.authenticate(Context().with_value(TOKEN, token))
    assert ctx[CLAIMS]["sub"] == "ada"
    assert ctx[TOKEN] == token
    with pytest.raises(errors.TokenMissing):
        await parser.authenticate(Context())
    with pytest.raises(errors.WrongAudience):
        await parser.authenticate(Context().with_value(TOKEN, a.sign(good_claims(aud="x"))))


async def test_authenticate_and_the_middleware_share_one_cache(algos: dict[str, Algo]) -> None:
    a = algos["HS256"]
    parser = make_parser(a)
    token = a.sign(good_claims(jti="shared-cache"))
    await parser.authenticate(Context().with_value(TOKEN, token))
    await parser.authenticate(Context().with_value(TOKEN, token))  # admitted on second use
    calls: Calls = []
    await call(parser, token, calls)  # the middleware hits the cache authenticate filled
    assert (parser.cache.hits, parser.cache.misses) == (1, 2)
    assert calls[0]["jti"] == "shared-cache"


# -- the verified-token cache --------------------------------------------------------


async def test_cache_admits_a_token_on_its_second_verification(algos: dict[str, Algo]) -> None:
    a = algos["HS256"]
    parser = make_parser(a)
    once, twice = a.sign(good_claims(jti="once")), a.sign(good_claims(jti="twice"))
    await call(parser, once, [])
    await call(parser, twice, [])
    await call(parser, twice, [])
    assert once not in parser.cache
    assert twice in parser.cache
    await call(parser, twice, [])
    assert (parser.cache.hits, parser.cache.misses) == (1, 3)


async def test_a_cached_token_goes_straight_on_to_the_next_awaitable(
    algos: dict[str, Algo],
) -> None:
    # the middleware is a plain def: with the claims cached it returns what next returned
    a = algos["HS256"]
    parser = make_parser(a)
    token = a.sign(good_claims(jti="straight"))
    for _ in range(2):  # the second verification puts it in the cache
        await call(parser, token, [])
    seen: Calls = []
    answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    answer.set_result("ok")

    def next_endpoint(ctx: Context, request: str) -> asyncio.Future[str]:
        seen.append(ctx[CLAIMS])
        return answer

    assert parser(next_endpoint)(Context().with_value(TOKEN, token), "req") is answer
    assert seen[0]["jti"] == "straight"


async def test_a_refusal_comes_out_of_the_await_not_the_call(algos: dict[str, Algo]) -> None:
    endpoint = make_parser(algos["HS256"])(recording([]))
    refused = endpoint(Context(), "req")  # no token: nothing raised yet
    with pytest.raises(errors.TokenMissing):
        await refused
    bad = endpoint(Context().with_value(TOKEN, "not.a.token"), "req")
    with pytest.raises(errors.TokenError):
        await bad


def test_token_cache_admit_counts_offers_and_put_stores_at_once() -> None:
    cache: TokenCache[dict[str, Any]] = TokenCache(clock=lambda: 100.0, max_size=2)
    assert cache.admit("a") is False  # first offer: remembered, not kept
    assert "a" not in cache
    assert cache.admit("a") is True  # second offer: keep it
    cache.put("a", {"sub": "a"}, 0.0, 1_000.0, 100.0)
    assert cache.lookup("a") == {"sub": "a"}
    cache.put("b", {"sub": "b"}, 0.0, 1_000.0, 100.0)
    cache.put("c", {"sub": "c"}, 0.0, 1_000.0, 100.0)  # over max_size: the oldest goes
    assert ("a" in cache, "b" in cache, "c" in cache) == (False, True, True)
    assert TokenCache(clock=time.time, admit_on_first_use=True).admit("x") is True
    assert TokenCache(clock=time.time, max_size=0).admit("x") is False


async def test_dict_claims_are_copied_for_the_cache_and_per_hit(algos: dict[str, Algo]) -> None:
    a = algos["HS256"]
    parser = make_parser(a)
    token = a.sign(good_claims(jti="shared"))
    first = await parser.verify(Context(), token)  # seen once: nothing cached
    second = await parser.verify(Context(), token)  # seen twice: a copy is cached
    second["sub"] = "changed by a caller"
    third = await parser.verify(Context(), token)  # from the cache: untouched by the caller
    assert first["sub"] == third["sub"] != "changed by a caller"
    assert third is not second
    assert parser.cache.hits == 1


async def test_cache_hit_then_expires_exactly_at_exp(algos: dict[str, Algo]) -> None:
    a = algos["ES256"]
    clock = FakeClock(start=2_000_000_000.0)
    token = a.sign(good_claims(iat=None, exp=2_000_000_010))
    parser = parser_at(a, clock, leeway=0)
    calls: Calls = []
    for _ in range(3):
        await call(parser, token, calls)
    assert (parser.cache.hits, parser.cache.misses) == (1, 2)
    clock.now = 2_000_000_009.999
    await call(parser, token, calls)
    assert parser.cache.hits == 2
    clock.now = 2_000_000_010.0
    with pytest.raises(errors.TokenExpired):
        await call(parser, token, calls)
    assert token not in parser.cache
    assert len(calls) == 4


async def test_cache_rechecks_not_before_when_clock_goes_back(algos: dict[str, Algo]) -> None:
    a = algos["HS256"]
    clock = FakeClock(start=2_000_000_000.0)
    token = a.sign(good_claims(iat=None, nbf=2_000_000_000, exp=2_000_000_600))
    parser = parser_at(a, clock, leeway=0)
    await call(parser, token, [])
    await call(parser, token, [])
    assert token in parser.cache
    clock.now = 1_999_999_999.0  # wall clocks can step back
    with pytest.raises(errors.TokenNotYetValid):
        await call(parser, token, [])


async def test_cache_max_ttl_forces_reverification(algos: dict[str, Algo]) -> None:
    a = algos["HS256"]
    clock = FakeClock(start=2_000_000_000.0)
    token = a.sign(good_claims(iat=None, exp=None))  # no exp: lives only cache_max_ttl
    parser = parser_at(a, clock, cache_max_ttl=60, require_exp=False)
    await call(parser, token, [])
    await call(parser, token, [])  # stored now, until +60 s
    clock.advance(59.9)
    await call(parser, token, [])
    assert (parser.cache.hits, parser.cache.misses) == (1, 2)
    clock.advance(0.1)
    await call(parser, token, [])
    assert (parser.cache.hits, parser.cache.misses) == (1, 3)


async def test_failures_are_never_cached(algos: dict[str, Algo]) -> None:
    a = algos["HS256"]
    parser = make_parser(a)
    bad = a.sign(good_claims(aud="billing"))
    for _ in range(3):
        with pytest.raises(errors.WrongAudience):
            await call(parser, bad, [])
    assert len(parser.cache) == 0
    assert parser.cache.misses == 3


async def test_cache_is_bounded_fifo(algos: dict[str, Algo]) -> None:
    a = algos["HS256"]
    parser = make_parser(a, cache_size=3)
    tokens = [a.sign(good_claims(jti=f"t{i}")) for i in range(5)]
    for t in tokens:
        await call(parser, t, [])
        await call(parser, t, [])
    assert len(parser.cache) == 3
    assert [t in parser.cache for t in tokens] == [False, False, True, True, True]


def test_token_cache_admit_on_first_use() -> None:
    cache: TokenCache[str] = TokenCache(clock=lambda: 10.0, admit_on_first_use=True)
    cache.store("t", "claims", 0.0, 20.0, 10.0)
    assert cache.lookup("t") == "claims"
    disabled: TokenCache[str] = TokenCache(clock=lambda: 10.0, max_size=0)
    for _ in range(2):
        disabled.store("t", "claims", 0.0, 20.0, 10.0)
    assert disabled.lookup("t") is None
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError, match="negative"):
        TokenCache(clock=lambda: 0.0, max_size=-1)


async def test_cache_is_per_parser_so_audience_still_applies(algos: dict[str, Algo]) -> None:
    a = algos["HS256"]
    token = a.sign(good_claims())
    assert await call(make_parser(a), token, []) == "ok"
    with pytest.raises(errors.WrongAudience):
        await call(make_parser(a, audience="billing"), token, [])


async def test_cached_dict_claims_are_copied_per_request(algos: dict[str, Algo]) -> None:
    a = algos["HS256"]
    parser = make_parser(a)
    token = a.sign(good_claims())
    calls: Calls = []
    for _ in range(4):
        await call(parser, token, calls)
        calls[-1]["scope"] = "admin"  # a handler scribbling on its claims
    assert parser.cache.hits == 2
    assert len({id(c) for c in calls}) == 4
    assert (await parser.verify(Context(), token))["scope"] == "strings:read"


# -- claims_type and claims_key ------------------------------------------------------


@dataclass(frozen=True)
class User:
    sub: str
    scope: str

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> User:
        return cls(sub=claims["sub"], scope=claims["scope"])


async def test_claims_type_and_key(algos: dict[str, Algo]) -> None:
    a = algos["HS256"]
    user_key: Key[User] = Key("user")
    parser = jwt_parser(
        a.public, algorithms=["HS256"], audience=AUDIENCE, claims_type=User.from_claims,
        claims_key=user_key,
    )  # fmt: skip
    seen: list[User] = []

    async def endpoint(ctx: Context, request: None) -> None:
        seen.append(ctx[user_key])
        assert CLAIMS not in ctx

    wrapped = parser(endpoint)
    await wrapped(Context().with_value(TOKEN, a.sign(good_claims())), None)
    assert seen == [User("ada", "strings:read")]
    with pytest.raises(errors.InvalidClaims):
        await wrapped(Context().with_value(TOKEN, a.sign(good_claims(scope=None))), None)
    assert len(seen) == 1


async def test_default_claims_key_for_custom_type_is_new(algos: dict[str, Algo]) -> None:
    parser = jwt_parser(algos["HS256"].public, algorithms=["HS256"], claims_type=User.from_claims)
    assert cast(object, parser.claims_key) is not CLAIMS
    assert jwt_parser(algos["HS256"].public, algorithms=["HS256"]).claims_key is CLAIMS


async def test_key_rotation_with_keyset(algos: dict[str, Algo]) -> None:
    a, b = algos["RS256"], algos["ES256"]
    parser = jwt_parser(
        KeySet({"old": a.public, "new": b.public}),
        algorithms=["RS256", "ES256"], audience=AUDIENCE, issuer=ISSUER,
    )  # fmt: skip
    assert await call(parser, a.sign(good_claims(), kid="old"), []) == "ok"
    assert await call(parser, b.sign(good_claims(), kid="new"), []) == "ok"
    # an RS256 token naming the EC key: alg does not fit that key
    with pytest.raises(errors.AlgorithmNotAllowed):
        await call(parser, a.sign(good_claims(), kid="new"), [])
    with pytest.raises(errors.UnknownKey):
        await call(parser, a.sign(good_claims(), kid=None), [])


@pytest.mark.parametrize("exp", [10**400, float("nan"), float("inf"), True, "1", None])
async def test_odd_exp_values_are_invalid_claims(algos: dict[str, Algo], exp: Any) -> None:
    a = algos["HS256"]
    claims = good_claims()
    claims["exp"] = exp
    token = a.forge_signed({"alg": "HS256", "kid": KID}, claims)
    with pytest.raises(errors.TokenError) as info:
        await call(make_parser(a), token, [])
    assert type(info.value) is errors.InvalidClaims


async def test_token_longer_than_limit_is_malformed_without_decoding(
    algos: dict[str, Algo],
) -> None:
    a = algos["HS256"]
    token = a.sign(good_claims(pad="x" * 9000))
    with pytest.raises(errors.TokenMalformed):
        await call(make_parser(a), token, [])
    assert await call(make_parser(a, max_token_length=20_000), token, []) == "ok"


def test_pyjwt_errors_all_translate() -> None:
    from kitpy.auth.jwt.rules import translate

    assert isinstance(translate(jwt.InvalidKeyError("x")), errors.TokenError)
    assert type(translate(jwt.PyJWTError("x"))) is errors.TokenError
    assert type(translate(jwt.MissingRequiredClaimError("sub"))) is errors.MissingClaim
    assert type(translate(jwt.MissingRequiredClaimError("exp"))) is errors.MissingExpiry
    assert type(translate(jwt.InvalidTokenError("x"))) is errors.TokenMalformed
    assert type(translate(jwt.DecodeError("x"))) is errors.TokenMalformed


def test_time_module_untouched() -> None:
    """The parser's default clock is wall-clock time, the scale of exp."""
    parser = jwt_parser(b"k" * 32, algorithms=["HS256"])
    assert parser.cache.lookup("x") is None
    assert abs(parser._clock() - time.time()) < 5
