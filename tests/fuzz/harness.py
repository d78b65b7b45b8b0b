"""Shared pieces of the fuzz suite: example counts and a server loop in a background thread.

``KITPY_FUZZ_EXAMPLES=N`` raises every test's ``max_examples`` to at least N
(``make fuzz`` sets it); the defaults keep the suite under ~40 s.  Servers run
on their own event loop in a daemon thread so hypothesis can drive them from
plain tests with blocking clients, each call bounded by a socket timeout.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings

__all__ = ["fuzz_settings", "loop_thread"]

T = TypeVar("T")

_EXAMPLES = int(os.environ.get("KITPY_FUZZ_EXAMPLES", "0"))


def fuzz_settings(max_examples: int) -> settings:
    """Settings for one fuzz test: ``max_examples`` (or more, see the module), no deadline."""
    return settings(
        max_examples=max(max_examples, _EXAMPLES),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


class LoopThread:
    """An event loop running in a daemon thread; :meth:`run` executes a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)
        self.loop.close()


@contextmanager
def loop_thread() -> Iterator[LoopThread]:
    """A :class:`LoopThread`, stopped on exit."""
    thread = LoopThread()
    try:
        yield thread
    finally:
        thread.close()
