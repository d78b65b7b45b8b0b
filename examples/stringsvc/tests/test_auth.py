"""stringsvc started with ``--jwt-secret``: who is refused, and before what, over real sockets.

The Servers check the token before they read a body (``authenticate=``), so an
anonymous caller gets 401 / UNAUTHENTICATED whatever it sends; tokens must carry
the service's ``iss`` and ``aud`` and an ``exp``; two ``Authorization`` headers
are refused.
"""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import grpc
import grpc.aio
import jwt
import pytest
from multidict import CIMultiDict

from .. import cli
from ..__main__ import AUDIENCE, ISSUER
from ..pb import stringsvc_pb2 as pb
from .running import running_service

SECRET = "a-test-secret-that-is-at-least-32-bytes-long"
UPPERCASE = "/stringsvc.v1.StringService/Uppercase"


def token(**claims: Any) -> str:
    now = int(time.time())
    base: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "sub": "ada", "exp": now + 300}
    base.update(claims)
    payload = {k: v for k, v in base.items() if v is not None}
    return jwt.encode(payload, SECRET.encode(), algorithm="HS256")


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    *,
    content_type: str = "application/json",
    authorization: tuple[str, ...] = (),
) -> tuple[int, str]:
    headers = CIMultiDict([("Content-Type", content_type)])
    for value in authorization:
        headers.add("Authorization", value)
    async with session.post(url, data=body, headers=headers) as response:
        return response.status, json.loads(await response.read())["error"]["message"]


def test_the_cli_signs_what_the_service_requires() -> None:
    assert (cli.ISSUER, cli.AUDIENCE) == (ISSUER, AUDIENCE)


async def test_jwt_secret_refuses_before_the_body_and_checks_iss_aud_exp() -> None:
    async with running_service("--jwt-secret", SECRET) as svc:
        url = f"{svc.http_url}/uppercase"
        huge = b'{"s": "' + b"x" * (2 * 1024 * 1024) + b'"}'
        timeout = aiohttp.ClientTimeout(total=20)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            # anonymous: 401 whatever the body -- not 400, 413 or 415
            for body, content_type in [
                (b'{"s": ', "application/json"),
                (huge, "application/json"),
                (b'{"s": "hi"}', "text/plain"),
            ]:
                status, message = await post(session, url, body, content_type=content_type)
                assert (status, message) == (401, "missing bearer token")
            # a valid token: the same bodies get their precise errors
            good = (f"Bearer {token()}",)
            assert (await post(session, url, b'{"s": ', authorization=good))[0] == 400
            assert (await post(session, url, huge, authorization=good))[0] == 413
            wrong_type = await post(
                session, url, b'{"s": "hi"}', content_type="text/plain", authorization=good
            )
            assert wrong_type[0] == 415
            # iss, aud and exp are checked
            cases: list[tuple[dict[str, Any], str]] = [
                ({"iss": "someone-else"}, "token issuer is not accepted"),
                ({"iss": None}, "token issuer is not accepted"),
                ({"aud": "billing"}, "token audience is not accepted"),
                ({"exp": None}, "token has no exp claim (an expiry is required)"),
            ]
            for claims, expected in cases:
                bearer = (f"Bearer {token(**claims)}",)
                status, message = await post(session, url, b'{"s": "hi"}', authorization=bearer)
                assert (status, message) == (401, expected), claims
            # two Authorization headers, even two good ones
            status, message = await post(session, url, b'{"s": "hi"}', authorization=good * 2)
            assert (status, message) == (401, "more than one Authorization header")
            async with session.post(
                url, json={"s": "hi"}, headers={"Authorization": good[0]}
            ) as response:
                assert (response.status, await response.json()) == (200, {"v": "HI"})

        async with grpc.aio.insecure_channel(svc.grpc_addr) as channel:
            raw: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(UPPERCASE)
            for metadata, code in [
                ((), grpc.StatusCode.UNAUTHENTICATED),  # anonymous, a message that cannot parse
                ((("authorization", f"Bearer {token(iss='x')}"),), grpc.StatusCode.UNAUTHENTICATED),
                ((("authorization", f"Bearer {token()}"),), grpc.StatusCode.INVALID_ARGUMENT),
            ]:
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await raw(b"\xff\xff\xff", metadata=metadata, timeout=10)
                assert info.value.code() is code, metadata
            twice = (("authorization", f"Bearer {token()}"),) * 2
            request = pb.UppercaseRequest(s="hi").SerializeToString()
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await raw(request, metadata=twice, timeout=10)
            assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
            assert info.value.details() == "more than one Authorization header"
        assert await svc.stop() == 0
    # the refusals were logged and counted at the Server, with their code
    refused = [line for line in svc.lines if '"code":"UNAUTHENTICATED"' in line]
    assert len(refused) >= 10
