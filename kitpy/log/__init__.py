"""Structured logging for endpoints with structlog.

* :func:`call_logging` -- one structured line per endpoint call.
* :func:`stream_logging` -- one line per stream of a stream endpoint, with its
  message counts.
* :class:`StdlibBridge` -- standard-library log records (aiohttp, asyncio,
  grpc) through the same logger, one line each.
* :func:`server_error_logging` -- an ``error_handler`` logging the errors a
  Server's own steps raised (undecodable requests, unencodable responses).
* :func:`make_logger` -- a JSON or console structlog logger built without
  touching structlog's global configuration.

Example::

    logger = make_logger(format="json")
    endpoint = call_logging(logger)(make_uppercase_endpoint(svc))
"""

from kitpy._extras import require

require("structlog", extra="log")

from kitpy.log.factory import make_logger
from kitpy.log.middleware import (
    Fields,
    Logger,
    ServerErrorLog,
    call_logging,
    server_error_logging,
)
from kitpy.log.stdlib import StdlibBridge
from kitpy.log.stream import stream_logging

__all__ = [
    "Fields",
    "Logger",
    "ServerErrorLog",
    "StdlibBridge",
    "call_logging",
    "make_logger",
    "server_error_logging",
    "stream_logging",
]
