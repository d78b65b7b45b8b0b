"""StdlibBridge: library log records come out as one structlog JSON line, traceback inside."""

from __future__ import annotations

import io
import json
import logging

from kitpy.log import StdlibBridge, make_logger


def test_a_library_traceback_is_one_json_line() -> None:
    out = io.StringIO()
    bridge = StdlibBridge.install(make_logger(format="json", stream=out))
    try:
        try:
            raise OSError("accept failed\nsecond line")
        except OSError:
            logging.getLogger("asyncio").exception("socket.accept() out of system resource")
        logging.getLogger("aiohttp.access").info("ignored: below WARNING")
        logging.getLogger("aiohttp.server").warning("peer %s went away", "1.2.3.4")
    finally:
        bridge.uninstall()
    logging.getLogger("asyncio").warning("after uninstall: not bridged")

    lines = out.getvalue().splitlines()
    assert len(lines) == 2  # each record one line, however many lines its traceback has
    error, warning = (json.loads(line) for line in lines)
    assert error["event"] == "socket.accept() out of system resource"
    assert (error["level"], error["logger"]) == ("error", "asyncio")
    assert "OSError" in json.dumps(error["exception"])
    assert (warning["event"], warning["level"]) == ("peer 1.2.3.4 went away", "warning")


def test_uninstall_restores_the_root_logger() -> None:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    bridge = StdlibBridge.install(make_logger(format="json", stream=io.StringIO()))
    assert bridge in root.handlers
    bridge.uninstall()
    assert (root.level, root.handlers) == (level, handlers)
