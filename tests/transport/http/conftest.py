"""Fixtures for HTTP transport tests (real aiohttp servers on 127.0.0.1, port 0) and the
small request type and endpoint several of them serve."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from kitpy import Context
from kitpy.transport.http import RunningApp, start_app

ServeApp = Callable[..., Awaitable[URL]]

JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True, slots=True)
class Echo:
    s: str


async def upper(ctx: Context, request: Echo) -> Echo:
    """An endpoint: ``Echo(s)`` -> ``Echo(s.upper())``."""
    return Echo(s=request.s.upper())


@pytest.fixture
async def serve_app() -> AsyncIterator[ServeApp]:
    """``await serve_app(app, **start_app_options)`` -> the base URL; stopped after the test."""
    running: list[RunningApp] = []

    async def start(app: web.Application, **options: Any) -> URL:
        options.setdefault("grace_period", 2.0)
        app_running = await start_app(app, host="127.0.0.1", port=0, **options)
        running.append(app_running)
        return app_running.url

    yield start
    for app_running in running:
        await app_running.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp client session with a 10 s safety timeout."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as client:
        yield client
