"""Capture log lines from an injected structlog logger, for assertions in tests.

structlog's own ``capture_logs()`` only sees loggers that use the global
configuration; kitpy never configures structlog globally, so a test builds a
:class:`CapturedLogs` and passes its ``logger`` to the code under test.
"""

from __future__ import annotations

from kitpy._extras import require

require("structlog", extra="log")

import logging
from typing import Any

import structlog
from structlog.testing import LogCapture
from structlog.typing import EventDict, FilteringBoundLogger

__all__ = ["CapturedLogs"]


class CapturedLogs:
    """A structlog logger that records every event instead of writing it.

    Each entry is the event dict as the code logged it, plus ``log_level``
    (``"info"``, ``"warning"``, ...); ``exc_info`` stays the exception object.

    Example::

        logs = CapturedLogs()
        endpoint = call_logging(logs.logger, name="uppercase")(make_uppercase_endpoint(svc))
        await endpoint(Context(), UppercaseRequest("hi"))
        logs.assert_logged_once("endpoint call", method="uppercase", code="OK")
    """

    def __init__(self, *, level: int = logging.DEBUG) -> None:
        self._capture = LogCapture()
        self.logger: FilteringBoundLogger = structlog.wrap_logger(
            structlog.ReturnLogger(),
            processors=[self._capture],
            wrapper_class=structlog.make_filtering_bound_logger(level),
            context_class=dict,
        ).bind()

    @property
    def entries(self) -> list[EventDict]:
        """Every captured event dict, oldest first."""
        return self._capture.entries

    def find(self, event: str | None = None, **fields: Any) -> list[EventDict]:
        """The entries whose ``event`` (when given) and ``fields`` all match."""
        return [
            entry
            for entry in self._capture.entries
            if (event is None or entry.get("event") == event)
            and all(k in entry and entry[k] == v for k, v in fields.items())
        ]

    def assert_logged_once(self, event: str | None = None, **fields: Any) -> EventDict:
        """Assert exactly one entry matches and return it (the message lists all entries)."""
        found = self.find(event, **fields)
        if len(found) != 1:
            raise AssertionError(
                f"expected exactly one log entry matching event={event!r} {fields}, "
                f"found {len(found)}; captured: {self._capture.entries}"
            )
        return found[0]

    def assert_logged_at_least_once(self, event: str | None = None, **fields: Any) -> EventDict:
        """Assert one or more entries match and return the first (the message lists all)."""
        found = self.find(event, **fields)
        if not found:
            raise AssertionError(
                f"expected a log entry matching event={event!r} {fields}, found none; "
                f"captured: {self._capture.entries}"
            )
        return found[0]

    def clear(self) -> None:
        """Forget every captured entry."""
        self._capture.entries.clear()
