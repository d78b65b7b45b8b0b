"""atheris harness: the JWT parser on arbitrary token text (HS256, fixed clock).

Property: every token is either accepted (the endpoint sees a claims dict) or
rejected with a ``TokenError`` whose code is UNAUTHENTICATED; no other
exception escapes the parser.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]

with atheris.instrument_imports():
    from kitpy import Context
    from kitpy.auth import CLAIMS, TOKEN
    from kitpy.auth.errors import TokenError
    from kitpy.auth.jwt import StaticKey, jwt_parser
    from kitpy.errors import Code

SECRET = b"fuzzing-secret-of-at-least-32-bytes!!"


async def endpoint(ctx: Context, request: None) -> dict[str, Any]:
    return ctx[CLAIMS]


guarded = jwt_parser(
    StaticKey(SECRET, algorithm="HS256"),
    algorithms=["HS256"],
    audience="fuzz-aud",
    clock=lambda: 1_700_000_000.0,
)(endpoint)
loop = asyncio.new_event_loop()


def test_one_input(data: bytes) -> None:
    token = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(4096)
    try:
        claims = loop.run_until_complete(guarded(Context().with_value(TOKEN, token), None))
    except TokenError as exc:
        code = exc.code
    else:
        assert isinstance(claims, dict)
        return
    assert code is Code.UNAUTHENTICATED


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
