"""make_logger: JSON and console loggers that leave structlog's global config alone."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys

import pytest
import structlog

from kitpy import Context, Internal
from kitpy.config import Live, Rejection
from kitpy.log import call_logging, make_logger


def test_json_lines_on_a_text_stream() -> None:
    stream = io.StringIO()
    logger = make_logger(stream=stream, service="svc")
    logger.info("hello", n=1)
    logger.debug("dropped")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["event"] == "hello"
    assert line["n"] == 1
    assert line["service"] == "svc"
    assert line["level"] == "info"
    assert line["timestamp"].endswith("Z")


async def test_server_fault_renders_a_structured_traceback_without_locals() -> None:
    stream = io.StringIO()
    logger = make_logger(stream=stream)

    async def broken(ctx: Context, request: str) -> str:
        password = "hunter2"  # a local that must not reach the log
        raise Internal(f"broken {len(password)}")

    endpoint = call_logging(logger)(broken)
    with pytest.raises(Internal):
        await endpoint(Context(), "x")
    line = json.loads(stream.getvalue())
    assert line["level"] == "error"
    assert line["code"] == "INTERNAL"
    assert line["exception"][0]["exc_type"] == "Internal"
    assert any(frame["name"] == "broken" for frame in line["exception"][0]["frames"])
    assert "hunter2" not in stream.getvalue()


def test_json_to_stdout_uses_bytes_and_is_one_line_per_event() -> None:
    code = (
        "from kitpy.log import make_logger\n"
        "log = make_logger()\n"
        "log.info('a', x=1)\n"
        "log.warning('b')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    events = [json.loads(line) for line in out.splitlines()]
    assert [(e["event"], e["level"]) for e in events] == [("a", "info"), ("b", "warning")]


def test_console_format_is_readable_text() -> None:
    stream = io.StringIO()
    logger = make_logger(format="console", stream=stream, level=logging.WARNING)
    logger.info("quiet")
    logger.warning("loud", key="value")
    text = stream.getvalue()
    assert "quiet" not in text
    assert "loud" in text
    assert "key=value" in text
    assert "\x1b[" not in text  # a StringIO is not a terminal: no colours


def test_bad_format_is_rejected() -> None:
    with pytest.raises(ValueError, match="format must be"):
        make_logger(format="xml")  # type: ignore[arg-type]


def test_global_structlog_configuration_is_untouched() -> None:
    before = structlog.get_config()
    make_logger(stream=io.StringIO())
    make_logger(format="console", stream=io.StringIO())
    assert structlog.get_config() == before
    assert not structlog.is_configured()


def test_a_level_by_name_or_number() -> None:
    stream = io.StringIO()
    make_logger(stream=stream, level="warning").info("dropped")
    make_logger(stream=stream, level=logging.DEBUG).debug("kept")
    assert [json.loads(line)["event"] for line in stream.getvalue().splitlines()] == ["kept"]
    with pytest.raises(ValueError, match="expected a log level"):
        make_logger(level="loud")


def test_a_live_level_applies_at_once_to_bound_loggers_and_refuses_non_levels() -> None:
    stream = io.StringIO()
    rejected: list[Rejection] = []
    level: Live[str] = Live("info", name="log_level", on_reject=rejected.append)
    logger = make_logger(stream=stream, level=level, format="json")
    bound = logger.bind(request_id="r1")  # bound before the change: follows it too

    def events() -> list[str]:
        out = [json.loads(line)["event"] for line in stream.getvalue().splitlines()]
        stream.seek(0)
        stream.truncate()
        return out

    bound.debug("a")
    bound.info("b")
    assert events() == ["b"]
    assert level.set("debug")
    bound.debug("c")
    logger.debug("d")
    assert events() == ["c", "d"]
    assert level.set("error")
    bound.info("e")
    bound.warning("f")
    bound.error("g")
    bound.exception("h")
    bound.critical("i")
    assert events() == ["g", "h", "i"]
    assert not level.set("loud")  # not a level: refused, error stays
    assert level.value == "error"
    assert "expected a log level" in str(rejected[0])
    levels: Live[int] = Live(logging.WARNING, name="level")
    numeric = make_logger(stream=stream, level=levels)
    numeric.info("j")
    levels.set("10")
    numeric.debug("k")
    assert events() == ["k"]
