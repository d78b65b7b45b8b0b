"""Standard-library log records (aiohttp's, asyncio's, grpc's, kitpy's own) as structlog events.

Libraries log through :mod:`logging`; with nothing configured, Python prints
their warnings as plain text, and a traceback as many lines -- which breaks a
pipeline that reads one JSON object per line.  :class:`StdlibBridge` is a
:class:`logging.Handler` that hands each record to your structlog logger
instead, so it comes out in the same format as the service's own lines: one
line, the traceback inside its ``exception`` field, plus ``logger`` (the
record's logger name).

Installing it is the application's decision (it changes the process's root
logger), made once in ``main``::

    logger = make_logger(format="json")
    bridge = StdlibBridge.install(logger)      # WARNING and above, from every library
    ...
    bridge.uninstall()                          # e.g. at exit, or in a test
"""

from __future__ import annotations

import logging
from typing import Any

from kitpy.log.middleware import Logger

__all__ = ["StdlibBridge"]


class StdlibBridge(logging.Handler):
    """A :class:`logging.Handler` that logs each record through a structlog ``logger``.

    The event is the record's message (arguments applied); ``logger`` names
    the record's logger, and an exception travels as ``exc_info`` for the
    structlog renderer to format into one field.  Records at ``level`` and
    above are bridged: ERROR and CRITICAL log at error, WARNING at warning,
    the rest at info.

    Example::

        bridge = StdlibBridge(logger)
        logging.getLogger("aiohttp.server").addHandler(bridge)
    """

    def __init__(self, logger: Logger, *, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self._logger = logger
        self._installed_on: logging.Logger | None = None
        self._previous_level = logging.NOTSET

    @classmethod
    def install(cls, logger: Logger, *, level: int = logging.WARNING) -> StdlibBridge:
        """Bridge every library's records at ``level`` and above (a handler on the root logger).

        The root logger's level is lowered to ``level`` if it was higher, and
        put back by :meth:`uninstall`.
        """
        bridge = cls(logger, level=level)
        root = logging.getLogger()
        bridge._installed_on = root
        bridge._previous_level = root.level
        if root.level > level or root.level == logging.NOTSET:
            root.setLevel(level)
        root.addHandler(bridge)
        return bridge

    def uninstall(self) -> None:
        """Remove the handler :meth:`install` added and restore the root logger's level."""
        if self._installed_on is not None:
            self._installed_on.removeHandler(self)
            self._installed_on.setLevel(self._previous_level)
            self._installed_on = None

    def emit(self, record: logging.LogRecord) -> None:
        """Log ``record`` through the structlog logger (never raises, as a Handler must not)."""
        try:
            fields: dict[str, Any] = {"logger": record.name}
            if record.exc_info and record.exc_info[1] is not None:
                fields["exc_info"] = record.exc_info[1]
            if record.levelno >= logging.ERROR:
                self._logger.error(record.getMessage(), **fields)
            elif record.levelno >= logging.WARNING:
                self._logger.warning(record.getMessage(), **fields)
            else:
                self._logger.info(record.getMessage(), **fields)
        except Exception:
            self.handleError(record)
