"""The README's code runs: its blocks are executed in order, then exercised for real."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp

from examples.stringsvc.config import Settings
from examples.stringsvc.endpoints import make_endpoints
from examples.stringsvc.service import BasicStringService
from examples.stringsvc.transport_http import make_http_app
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


async def test_readme_curl_gets_the_answer_it_shows_from_the_example_service() -> None:
    text = README.read_text()
    line = re.search(r"^curl (.*)$", text, flags=re.MULTILINE)
    assert line is not None, "the quick start shows how to call the example service"
    header = re.search(r"-H '([^:]+): ([^']+)'", line[1])
    body = re.search(r"-d '([^']+)'", line[1])
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/\S+)", line[1])
    shown = re.search(r"^# (\{.*\})$", text[line.end() :], flags=re.MULTILINE)
    assert header is not None
    assert body is not None
    assert url is not None
    assert shown is not None
    assert int(url[1]) == Settings().http_addr.port  # where `make run` listens
    ports = re.search(r"HTTP on port (\d+), gRPC on (\d+)", text)
    assert ports is not None
    assert (int(ports[1]), int(ports[2])) == (Settings().http_addr.port, Settings().grpc_addr.port)
    running = await start_app(make_http_app(make_endpoints(BasicStringService())), port=0)
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{running.url}{url[2]}", data=body[1], headers={header[1]: header[2]}
            ) as resp,
        ):
            assert resp.status == 200
            assert await resp.text() == shown[1]
    finally:
        await running.stop()
