"""stringsvc with --nats: Uppercase and Count by request-reply, the same JSON bodies as HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import nats
import nats.aio.client
import pytest

from examples.stringsvc.tests.running import running_service
from tests.conftest import Nats


@pytest.fixture
async def nc(nats_server: Nats) -> AsyncIterator[nats.aio.client.Client]:
    conn = await nats.connect(nats_server.url, connect_timeout=2, allow_reconnect=False)
    yield conn
    await conn.close()


async def test_stringsvc_answers_over_nats_with_the_http_bodies(
    nats_server: Nats, nc: nats.aio.client.Client
) -> None:
    async with running_service("--nats", nats_server.url) as svc:
        reply = await nc.request("stringsvc.uppercase", b'{"s": "hello"}', timeout=5)
        assert json.loads(reply.data) == {"v": "HELLO"}
        reply = await nc.request("stringsvc.count", b'{"s": "go kit"}', timeout=5)
        assert json.loads(reply.data) == {"v": 6}

        reply = await nc.request("stringsvc.uppercase", b'{"s": ""}', timeout=5)
        assert reply.headers is not None
        assert reply.headers["Kit-Code"] == "INVALID_ARGUMENT"
        assert json.loads(reply.data) == {
            "error": {"code": "INVALID_ARGUMENT", "message": "empty string"}
        }
        reply = await nc.request("stringsvc.count", b"not json", timeout=5)
        assert reply.headers is not None
        assert reply.headers["Kit-Code"] == "INVALID_ARGUMENT"

        assert any(
            line.startswith("stringsvc: NATS serving stringsvc.uppercase") for line in svc.lines
        )
        assert await svc.stop() == 0
    assert "stringsvc: stopped" in svc.lines
