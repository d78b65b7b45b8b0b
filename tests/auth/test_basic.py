"""Basic auth: the before hook and the middleware, called directly."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from kitpy import Code, Context, Unauthenticated
from kitpy.auth import BASIC_CREDENTIALS, BASIC_USER, basic_auth, basic_http_to_context

CHALLENGE = {"WWW-Authenticate": 'Basic realm="strings", charset="UTF-8"'}


class FakeRequest:
    def __init__(self, **headers: str) -> None:
        self.headers = CIMultiDictProxy(CIMultiDict(headers))


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def run(authorization: str | None) -> list[str]:
    seen: list[str] = []

    async def endpoint(ctx: Context, request: None) -> None:
        seen.append(ctx[BASIC_USER])

    request = FakeRequest() if authorization is None else FakeRequest(Authorization=authorization)
    ctx = basic_http_to_context(Context(), request)
    await basic_auth("ada", "pässwörd", realm="strings")(endpoint)(ctx, None)
    return seen


async def test_right_credentials_pass() -> None:
    assert await run(basic("ada", "pässwörd")) == ["ada"]
    assert await run("bAsIc " + basic("ada", "pässwörd").split()[1]) == ["ada"]


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        basic("ada", "wrong"),
        basic("bob", "pässwörd"),
        basic("ada", "pässwörd!"),
        basic("", ""),
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
        "Basic ünïcode",
        "Bearer abc",
        "Basic",
    ],
)
async def test_anything_else_is_401_with_challenge(authorization: str | None) -> None:
    with pytest.raises(Unauthenticated) as info:
        await run(authorization)
    assert info.value.code is Code.UNAUTHENTICATED
    assert info.value.message == "invalid or missing credentials"
    assert info.value.headers == CHALLENGE


def test_hook_only_takes_basic() -> None:
    ctx = basic_http_to_context(Context(), FakeRequest(Authorization="Basic abc"))
    assert ctx[BASIC_CREDENTIALS] == "abc"
    assert BASIC_CREDENTIALS not in basic_http_to_context(
        Context(), FakeRequest(Authorization="Bearer abc")
    )


@pytest.mark.parametrize(
    ("user", "realm"), [("", "r"), ("a:b", "r"), ("a", 'x"y'), ("a", "x\\y"), ("a", "x\ny")]
)
def test_bad_configuration(user: str, realm: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        basic_auth(user, "pw", realm=realm)


def test_middleware_is_generic() -> None:
    mw: Any = basic_auth("a", "b")
    assert callable(mw(lambda ctx, req: None))
