"""The JWT signer middleware: what it signs, its token cache, and its build-time checks."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from kitpy import Context
from kitpy.auth import TOKEN
from kitpy.auth.jwt import jwt_parser, jwt_signer
from kitpy.testing import FakeClock
from tests.auth.tokens import AUDIENCE, Algo


def peek(token: str, key: Any, alg: str) -> dict[str, Any]:
    """Verify the signature but not the times (the tests run on a fake clock)."""
    options: Any = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}
    claims: dict[str, Any] = jwt.decode(token, key, algorithms=[alg], options=options)
    return claims


async def token_from(signer: Any, ctx: Context | None = None) -> str:
    seen: list[str] = []

    async def endpoint(ctx: Context, request: None) -> None:
        seen.append(ctx[TOKEN])

    await signer(endpoint)(ctx or Context(), None)
    return seen[0]


async def test_signed_token_verifies_with_the_parser(algo: Algo) -> None:
    signer = jwt_signer(algo.private, algorithm=algo.name, kid="k9", claims={"aud": AUDIENCE})
    token = await token_from(signer)
    assert jwt.get_unverified_header(token)["kid"] == "k9"
    parser = jwt_parser(algo.public, algorithms=[algo.name], audience=AUDIENCE)
    claims = await parser.verify(Context(), token)
    assert claims["aud"] == AUDIENCE
    assert claims["exp"] - claims["iat"] == 300


async def test_cached_until_refresh_margin_before_exp(algos: dict[str, Algo]) -> None:
    a = algos["HS256"]
    clock = FakeClock(start=2_000_000_000.0)
    signer = jwt_signer(a.private, algorithm="HS256", lifetime=100, refresh_margin=10, clock=clock)
    first = await token_from(signer)
    assert peek(first, a.public, "HS256") == {
        "iat": 2_000_000_000,
        "exp": 2_000_000_100,
    }
    clock.advance(89.9)
    assert await token_from(signer) == first
    clock.advance(0.1)
    second = await token_from(signer)
    assert second != first
    assert peek(second, a.public, "HS256")["iat"] == 2_000_000_090


async def test_without_cache_signs_every_call(algos: dict[str, Algo]) -> None:
    a = algos["HS256"]
    clock = FakeClock(start=2_000_000_000.0)
    signer = jwt_signer(a.private, algorithm="HS256", cache=False, clock=clock)
    first = await token_from(signer)
    clock.advance(1)
    assert await token_from(signer) != first


async def test_claims_from_context_are_cached_per_claims(algos: dict[str, Algo]) -> None:
    a = algos["ES256"]
    signer = jwt_signer(a.private, algorithm="ES256", claims=lambda ctx: {"sub": ctx[TOKEN]})
    # (ES256 signatures are randomised, so equal tokens prove the cache answered)
    ada1 = await token_from(signer, Context().with_value(TOKEN, "ada"))
    bob = await token_from(signer, Context().with_value(TOKEN, "bob"))
    ada2 = await token_from(signer, Context().with_value(TOKEN, "ada"))
    assert ada1 == ada2
    assert ada1 != bob
    assert jwt.decode(bob, a.public, algorithms=["ES256"])["sub"] == "bob"


async def test_explicit_exp_wins_and_expired_claims_are_not_cached(algos: dict[str, Algo]) -> None:
    a = algos["HS256"]
    clock = FakeClock(start=2_000_000_000.0)
    signer = jwt_signer(a.private, algorithm="HS256", claims={"exp": 1_000}, clock=clock)
    first = await token_from(signer)
    assert peek(first, a.public, "HS256")["exp"] == 1_000
    clock.advance(1)
    assert await token_from(signer) != first  # iat moved: it was signed again


def test_bad_signer_configuration_fails_at_build(algos: dict[str, Algo]) -> None:
    with pytest.raises(ValueError, match="none"):
        jwt_signer(b"k" * 32, algorithm="none")
    with pytest.raises(ValueError, match="cannot sign"):
        jwt_signer(algos["RS256"].public, algorithm="RS256")  # a public key
    with pytest.raises(ValueError, match="HMAC key"):
        jwt_signer(b"short", algorithm="HS256")
    with pytest.raises(ValueError, match="cannot sign"):
        jwt_signer(algos["RS256"].public_pem, algorithm="HS256")
