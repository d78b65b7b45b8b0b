"""stringsvc with --nats: Uppercase and Count by request-reply, the same JSON bodies as HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import nats.aio.client
import nats.js.errors
import pytest

from examples.stringsvc.tests.running import running_service
from tests.conftest import Nats

ROOT = Path(__file__).resolve().parents[3]


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


async def test_each_uppercase_publishes_an_event_that_wordcount_consumes(
    nats_server: Nats, nc: nats.aio.client.Client
) -> None:
    js = nc.jetstream()
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_stream("STRINGSVC_EVENTS")  # start from no events
    async with running_service("--nats", nats_server.url) as svc:
        wordcount = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "examples.wordcount", "--nats", nats_server.url,
            cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert wordcount.stdout is not None
        try:
            async with asyncio.timeout(20):
                assert (await wordcount.stdout.readline()).startswith(b"wordcount: consuming")
            for text in ("hello world", "go kit rocks"):
                reply = await nc.request("stringsvc.uppercase", json.dumps({"s": text}).encode())
                assert json.loads(reply.data) == {"v": text.upper()}
            async with asyncio.timeout(20):
                lines = [(await wordcount.stdout.readline()).decode().strip() for _ in range(2)]
            assert lines == ["words 2 total 2", "words 3 total 5"]
        finally:
            wordcount.send_signal(signal.SIGTERM)
            async with asyncio.timeout(20):
                rest = (await wordcount.communicate())[0].decode()
        assert wordcount.returncode == 0
        assert "wordcount: stopped" in rest
        info = await js.stream_info("STRINGSVC_EVENTS")
        assert info.state.messages == 2  # stored, for any other consumer too
        assert await svc.stop() == 0
