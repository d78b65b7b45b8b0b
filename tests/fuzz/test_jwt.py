"""Fuzz the JWT parser with structured hostile tokens: always UNAUTHENTICATED, never a crash.

tests/auth/test_properties.py already throws arbitrary text and single-character
mutations at it.  Here the tokens are well-formed on the outside:

* any JSON header (``alg`` none / another family / junk, odd ``kid``, ``crit``,
  ``b64``), any payload bytes, any signature -- never accepted;
* tokens *correctly signed* with the parser's own HS256 key around any payload
  (non-objects, wrong-typed, huge, fractional, NaN or infinite time claims,
  odd ``aud``/``iss``) -- accepted only when every claim checks out, otherwise
  rejected with a ``TokenError`` (UNAUTHENTICATED); no other exception escapes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
from typing import Any

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kitpy import Context
from kitpy.auth import CLAIMS, TOKEN
from kitpy.auth.errors import TokenError
from kitpy.auth.jwt import StaticKey, jwt_parser
from kitpy.errors import Code

from .harness import fuzz_settings

SECRET = b"fuzzing-secret-of-at-least-32-bytes!!"
AUDIENCE, ISSUER = "fuzz-aud", "fuzz-iss"
NOW = 1_700_000_000.0

parser = jwt_parser(
    StaticKey(SECRET, algorithm="HS256"),
    algorithms=["HS256"],
    audience=AUDIENCE,
    issuer=ISSUER,
    clock=lambda: NOW,
)


async def endpoint(ctx: Context, request: None) -> dict[str, Any]:
    return ctx[CLAIMS]


guarded = parser(endpoint)


def verify(token: str) -> dict[str, Any] | TokenError:
    """The claims the endpoint saw, or the ``TokenError`` the parser raised."""

    async def call() -> dict[str, Any]:
        return await guarded(Context().with_value(TOKEN, token), None)

    try:
        return asyncio.run(call())
    except TokenError as exc:
        error = exc
    assert error.code is Code.UNAUTHENTICATED
    return error


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()  # NaN and infinities included: json.dumps writes them
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
times = st.one_of(
    st.floats(NOW - 10**6, NOW + 10**6),
    st.integers(int(NOW) - 10**6, int(NOW) + 10**6),
    scalars,
    json_values,
)
claims = st.fixed_dictionaries(
    {},
    optional={
        "exp": times,
        "nbf": times,
        "iat": times,
        "aud": st.sampled_from([AUDIENCE, [AUDIENCE], [AUDIENCE, "x"], "other"]) | json_values,
        "iss": st.just(ISSUER) | json_values,
        "sub": st.text(max_size=10) | json_values,
        "jti": st.text(max_size=10) | json_values,
    },
)
payloads = st.one_of(
    claims.map(lambda c: json.dumps(c).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=60),
)
headers = st.fixed_dictionaries(
    {
        "alg": st.sampled_from(["HS256", "none", "None", "RS256", "ES256", "HS512", "", "EdDSA"])
        | json_values
    },
    optional={
        "kid": json_values,
        "typ": json_values,
        "crit": json_values,
        "b64": st.booleans() | json_values,
        "jku": st.just("http://127.0.0.1:1/jwks"),
    },
)


@fuzz_settings(200)
@given(header=headers | json_values, payload=payloads, signature=st.binary(max_size=64))
def test_forged_tokens_are_always_unauthenticated(
    header: Any, payload: bytes, signature: bytes
) -> None:
    token = ".".join([b64(json.dumps(header).encode()), b64(payload), b64(signature)])
    assert isinstance(verify(token), TokenError)


def acceptable(payload: bytes) -> bool:
    """Whether the claims in ``payload`` pass every check the parser is configured for."""
    try:
        c = json.loads(payload)
    except ValueError:
        return False
    if not isinstance(c, dict):
        return False

    def number(value: Any) -> bool:
        return type(value) in (int, float) and math.isfinite(value)

    if not ("exp" in c and number(c["exp"]) and c["exp"] > NOW):  # exp is required
        return False
    if "nbf" in c and not (number(c["nbf"]) and c["nbf"] <= NOW):
        return False
    if "iat" in c and not number(c["iat"]):
        return False
    aud = c.get("aud")
    if not (aud == AUDIENCE or (isinstance(aud, list) and AUDIENCE in aud)):
        return False
    return c.get("iss") == ISSUER


@fuzz_settings(300)
@given(payload=payloads, kid=st.none() | st.text(max_size=8))
def test_signed_tokens_pass_only_with_valid_claims(payload: bytes, kid: str | None) -> None:
    extra = None if kid is None else {"kid": kid}
    token = jwt.api_jws.encode(payload, SECRET, algorithm="HS256", headers=extra)
    result = verify(token)
    if isinstance(result, TokenError):
        return
    assert acceptable(payload), payload
    assert result == json.loads(payload)


@pytest.mark.parametrize(
    "claim", [{"exp": math.nan}, {"exp": math.inf}, {"nbf": -math.inf}, {"exp": 10**400}]
)
def test_absurd_time_claims_are_rejected(claim: dict[str, float]) -> None:
    payload = json.dumps({"aud": AUDIENCE, "iss": ISSUER, **claim}).encode()
    token = jwt.api_jws.encode(payload, SECRET, algorithm="HS256")
    assert isinstance(verify(token), TokenError)


def test_a_valid_token_is_accepted() -> None:
    """The control: the checks above are not passing because everything is rejected."""
    claims = {"aud": AUDIENCE, "iss": ISSUER, "exp": NOW + 60, "sub": "ada"}
    token = jwt.api_jws.encode(json.dumps(claims).encode(), SECRET, algorithm="HS256")
    assert verify(token) == claims
