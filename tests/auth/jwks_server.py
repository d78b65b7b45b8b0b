"""A real JWKS server for tests: aiohttp on 127.0.0.1, port 0, answering as a test steers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web

from tests.auth.tokens import Algo


def jwk_for(algo: Algo, kid: str) -> dict[str, Any]:
    """The public JWK of ``algo``'s key, with ``kid`` and ``alg``."""
    jwk: dict[str, Any] = jwt.get_algorithm_by_name(algo.name).to_jwk(algo.public, as_dict=True)
    jwk.update(kid=kid, alg=algo.name, use="sig")
    return jwk


@dataclass
class JWKSServer:
    """Serves ``{"keys": keys}``; ``mode`` switches to failures; ``hits`` counts requests."""

    keys: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "ok"  # ok | garbage | not_jwks | error | slow | huge
    hits: int = 0
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        if self.mode == "garbage":
            return web.Response(body=b"\x00<html>not json", content_type="application/json")
        if self.mode == "not_jwks":
            return web.json_response({"keys": "nope"})
        if self.mode == "error":
            return web.Response(status=500, text="boom")
        if self.mode == "huge":
            return web.Response(body=b" " * (2 << 20), content_type="application/json")
        if self.mode == "slow":
            await asyncio.sleep(30)
        return web.Response(body=json.dumps({"keys": self.keys}), content_type="application/json")


@asynccontextmanager
async def serve_jwks(*keys: dict[str, Any]) -> AsyncIterator[JWKSServer]:
    """Start a :class:`JWKSServer` on a free loopback port; stop it on exit."""
    server = JWKSServer(keys=list(keys))
    app = web.Application()
    app.router.add_get("/jwks.json", server.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.url = f"http://127.0.0.1:{port}/jwks.json"
    try:
        yield server
    finally:
        await runner.cleanup()
