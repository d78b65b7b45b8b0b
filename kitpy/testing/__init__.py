"""Helpers for testing endpoints and middleware without a network.

* :class:`FakeClock` -- virtual time for deadlines, breakers, limiters and retries.
* :class:`CapturedLogs` -- a structlog logger that records events (``kitpy[log]``).
* :class:`RequestMetrics`, :class:`StreamMetrics`, :class:`MemoryCounter`,
  :class:`MemoryGauge`, :class:`MemoryHistogram` -- in-memory metrics with
  readable values.
* :class:`SpanRecorder` -- an in-memory tracer provider with span assertions
  (``kitpy[otel]``).

The helpers that need an extra are imported on first use, so
``from kitpy.testing import FakeClock`` needs nothing beyond kitpy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from kitpy.testing.clock import FakeClock
from kitpy.testing.metrics import (
    MemoryCounter,
    MemoryGauge,
    MemoryHistogram,
    RequestMetrics,
    StreamMetrics,
)

if TYPE_CHECKING:
    from kitpy.testing.logs import CapturedLogs
    from kitpy.testing.tracing import SpanRecorder

__all__ = [
    "CapturedLogs",
    "FakeClock",
    "MemoryCounter",
    "MemoryGauge",
    "MemoryHistogram",
    "RequestMetrics",
    "SpanRecorder",
    "StreamMetrics",
]

_LAZY = {"CapturedLogs": "kitpy.testing.logs", "SpanRecorder": "kitpy.testing.tracing"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kitpy.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
