"""A generated service with ``--events-nats``: each Hello is stored in a real JetStream."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import nats

from kitpy.scaffold import generate
from tests.conftest import Nats

NAME = "greeter_events"


async def test_each_hello_of_a_generated_service_is_stored_as_an_event(
    nats_server: Nats, tmp_path: Path
) -> None:
    project = generate(NAME, directory=tmp_path).path
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", NAME, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0",
        "--shutdown-drain", "0", "--events-nats", nats_server.url,
        cwd=project, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(30):
            while not any(line.startswith(f"{NAME}: HTTP listening on") for line in lines):
                raw = await proc.stdout.readline()
                assert raw, "the service exited early:\n" + "\n".join(lines)
                lines.append(raw.decode().rstrip())
        url = lines[-1].rsplit(" ", 1)[1].rstrip("/")
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for name in ("Ada", "Grace"):
                async with session.post(f"{url}/hello", json={"name": name}) as r:
                    assert r.status == 200, await r.text()
            async with session.post(f"{url}/hello", json={"name": ""}) as r:
                assert r.status == 400  # a failed call publishes nothing

        nc = await nats.connect(nats_server.url, connect_timeout=2, allow_reconnect=False)
        try:
            js = nc.jetstream()
            sub = await js.pull_subscribe(f"{NAME}.events.greeted", durable="check")
            msgs = await sub.fetch(batch=10, timeout=5)
            events = [json.loads(m.data) for m in msgs]
            await js.delete_stream(f"{NAME.upper()}_EVENTS")
        finally:
            await nc.close()
        assert events == [
            {"name": "Ada", "greeting": "Hello, Ada!"},
            {"name": "Grace", "greeting": "Hello, Grace!"},
        ]
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_the_events_setting_is_in_help_with_its_variable(tmp_path: Path) -> None:
    project = generate(NAME, directory=tmp_path).path
    shown = subprocess.run(
        [sys.executable, "-m", NAME, "--help"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "--events-nats" in shown.stdout
    assert f"{NAME.upper()}_EVENTS_NATS" in shown.stdout
