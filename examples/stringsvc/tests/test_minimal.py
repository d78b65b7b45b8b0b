"""``python -m examples.stringsvc.minimal`` as a real process (port 0: a free port)."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[3]


async def test_minimal_serves_uppercase_count_and_json_errors_until_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "examples.stringsvc.minimal", "--port", "0",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(30):
            line = (await proc.stdout.readline()).decode().strip()
            assert line.startswith("stringsvc: HTTP listening on http://127.0.0.1:"), line
            url = line.rsplit(" ", 1)[1]
            async with aiohttp.ClientSession() as session:
                async with session.post(f"{url}/uppercase", json={"s": "hi"}) as r:
                    assert (r.status, await r.json()) == (200, {"v": "HI"})
                async with session.post(f"{url}/count", json={"s": "four"}) as r:
                    assert (r.status, await r.json()) == (200, {"v": 4})
                async with session.post(f"{url}/uppercase", json={"s": ""}) as r:
                    assert r.status == 400
                    assert (await r.json())["error"]["code"] == "INVALID_ARGUMENT"
                async with session.get(f"{url}/nope") as r:
                    assert (r.status, (await r.json())["error"]["code"]) == (404, "NOT_FOUND")
            proc.send_signal(signal.SIGTERM)
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
