"""Bounded waiting for tests: poll a condition until it holds or a timeout passes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["until"]


async def until(condition: Callable[[], bool], *, within: float = 5.0) -> None:
    """Wait until ``condition()`` holds, at most ``within`` seconds (TimeoutError after)."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 -- polling a count or a flag, bounded above
            await asyncio.sleep(0.01)
