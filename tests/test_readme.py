"""The README's code runs: its blocks are executed in order, then exercised for real."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp

from kitpy.transport.http import start_app

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_namespace() -> dict[str, Any]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 2, "the README should show the composition and the transports"
    namespace: dict[str, Any] = {"__name__": "readme"}
    for block in blocks:
        exec(compile(block, str(README), "exec", dont_inherit=True), namespace)
    return namespace


async def test_readme_unit_test_passes() -> None:
    ns = readme_namespace()
    await ns["test_uppercase"]()
    assert ns["calls"] == ["hi"]


async def test_readme_server_and_client_work_over_a_real_socket() -> None:
    ns = readme_namespace()
    running = await start_app(ns["app"], port=0)
    try:
        async with aiohttp.ClientSession() as session:
            assert await ns["call"](session, f"{running.url}/uppercase") == "HI"
            async with session.get(f"{running.url}/nope") as resp:  # the fallback's JSON 404
                assert resp.status == 404
                assert (await resp.json())["error"]["code"] == "NOT_FOUND"
    finally:
        await running.stop()
    assert ns["calls"] == ["hi"]
