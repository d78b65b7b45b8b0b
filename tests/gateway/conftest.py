"""Fixtures of the gateway's application tests (test_app.py, test_edge.py, test_claims.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from kitpy.auth.jwt import JWTParser, jwt_parser
from tests.gateway.rig import SECRET, GatewayRig


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


@pytest.fixture
async def rig(client: aiohttp.ClientSession) -> AsyncIterator[GatewayRig]:
    the_rig = GatewayRig(client)
    try:
        yield the_rig
    finally:
        await the_rig.close()


@pytest.fixture
def parser() -> JWTParser[Any]:
    """Verifies the callers' tokens (signed with ``SECRET``), as ``jwt_secret`` makes the
    gateway process do."""
    return jwt_parser(SECRET, algorithms=["HS256"])
