"""make_logger's JSON logger renders a plain call itself: the same bytes as structlog's path."""

from __future__ import annotations

import io
import json
import logging
import re
from decimal import Decimal
from typing import Any

import pytest
import structlog
from structlog.typing import FilteringBoundLogger

from kitpy.config import Live
from kitpy.log import make_logger
from kitpy.log.render import LineWriter, OrjsonLineRenderer

STAMP = re.compile(rb'"timestamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"')


class _AnyStamp:
    """Equal to any ISO 8601 UTC timestamp with microseconds (as the renderer writes them)."""

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, str)
            and STAMP.fullmatch(f'"timestamp":"{other}"'.encode()) is not None
        )


ANY_STAMP: Any = _AnyStamp()


class Custom:
    def __structlog__(self) -> str:
        return "custom ✓"


class Plain:
    def __repr__(self) -> str:
        return "<plain é>"


def taken(out: io.TextIOWrapper) -> list[dict[str, Any]]:
    """The lines written to ``out`` since the last call, parsed."""
    out.flush()
    buffer = out.buffer
    assert isinstance(buffer, io.BytesIO)
    lines = [json.loads(x) for x in buffer.getvalue().splitlines()]
    buffer.seek(0)
    buffer.truncate()
    return lines


class Pair:
    """A make_logger logger and structlog's own path with the same renderer, side by side."""

    def __init__(self, *, level: int = logging.INFO, **bound: Any) -> None:
        self.out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
        self.fast = make_logger(stream=self.out, level=level, **bound)
        self.reference_out = io.BytesIO()
        self.reference: FilteringBoundLogger = structlog.wrap_logger(
            LineWriter(self.reference_out),
            processors=[OrjsonLineRenderer()],
            wrapper_class=structlog.make_filtering_bound_logger(level),
            context_class=dict,
        ).bind(**bound)

    def lines(self) -> tuple[bytes, bytes]:
        """Both outputs, each timestamp checked and replaced (each call has its own time)."""
        self.out.flush()
        buffer = self.out.buffer
        assert isinstance(buffer, io.BytesIO)
        fast, fast_stamps = STAMP.subn(b'"timestamp":"T"', buffer.getvalue())
        reference, reference_stamps = STAMP.subn(b'"timestamp":"T"', self.reference_out.getvalue())
        assert fast_stamps == fast.count(b"\n")
        assert reference_stamps == reference.count(b"\n")
        return fast, reference


def test_plain_calls_write_the_same_bytes_as_structlogs_processor_path() -> None:
    pair = Pair(service="svc", user="ada", event_loop="main")
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("info", "endpoint call", {"method": "m", "took": 0.25, "code": "OK"}),
        ("warning", "bound value overridden", {"user": "grace", "n": 1}),
        ("error", "not native", {"custom": Custom(), "plain": Plain(), "amount": Decimal("1.5")}),
        (
            "info",
            "unicode: héllo ✓ 日本 🎉",
            {"clé": "välue ✓", "emoji": "🎉", "nested": {"ß": [1]}},
        ),
        ("critical", "renderer's own keys", {"level": "mine", "timestamp": "mine"}),
        ("warn", "an alias", {"raw": b"\x00\xff", "items": frozenset({1})}),
        ("fatal", "another alias", {}),
        ("msg", "and msg", {"none": None, "big": 2**40, "flag": True}),
        ("debug", "dropped by both", {"x": 1}),
    ]
    for method, event, kw in calls:
        getattr(pair.fast, method)(event, **kw)
        getattr(pair.reference, method)(event, **kw)
    for logger in (pair.fast, pair.reference):
        logger.log(logging.WARNING, "by number", n=2)
        logger.log(logging.DEBUG, "by number, dropped")
        logger.info("with %s args", "positional")  # structlog's path, on both
        logger.bind(request_id="r-1").unbind("user").info("rebound", user="x")
    fast, reference = pair.lines()
    assert fast == reference
    assert fast.count(b"\n") == 11
    first = json.loads(fast.splitlines()[0])
    assert list(first) == [
        "service", "user", "event_loop", "method", "took", "code", "event", "level", "timestamp"
    ]  # fmt: skip


def test_the_logger_is_a_filtering_bound_logger_and_bind_keeps_its_class() -> None:
    logger = make_logger(stream=io.TextIOWrapper(io.BytesIO()), service="svc")
    base = structlog.make_filtering_bound_logger(logging.INFO)
    assert isinstance(logger, base)
    assert type(logger).info is not base.info  # the level methods render themselves
    kinds = {
        type(logger.bind(a=1)),
        type(logger.unbind("service")),
        type(logger.try_unbind("nothing")),
        type(logger.new(b=2)),  # last: structlog's new() clears the context in place
    }
    assert kinds == {type(logger)}


def test_a_static_level_drops_below_it() -> None:
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    logger = make_logger(stream=out, level="warning")
    logger.debug("a")
    logger.info("b")
    logger.log(logging.INFO, "c")
    logger.warning("d")
    logger.error("e")
    logger.log(logging.CRITICAL, "f")
    assert [line["event"] for line in taken(out)] == ["d", "e", "f"]


def test_a_live_level_change_applies_to_the_direct_path_of_bound_loggers() -> None:
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    level: Live[str] = Live("info", name="log_level")
    bound = make_logger(stream=out, level=level).bind(request_id="r-1")

    def events() -> list[str]:
        lines = taken(out)
        assert all(line["request_id"] == "r-1" for line in lines)
        return [line["event"] for line in lines]

    bound.debug("a")
    bound.info("b")
    bound.log(logging.DEBUG, "c")
    assert events() == ["b"]
    assert level.set("debug")
    bound.debug("d")
    bound.log(logging.DEBUG, "e")
    bound.bind(more=1).debug("f")
    assert events() == ["d", "e", "f"]
    assert level.set("error")
    bound.info("g")
    bound.warning("h")
    bound.error("i")
    bound.critical("j")
    bound.info("k %s", "with args")  # structlog's path: the live level drops it too
    assert events() == ["i", "j"]


def test_exc_info_still_renders_the_structured_exception() -> None:
    pair = Pair(service="svc")
    for logger in (pair.fast, pair.reference):
        try:
            raise ValueError("nope")
        except ValueError as exc:
            logger.error("failed", exc_info=exc, code="INTERNAL")
            logger.exception("failed again")
    fast, reference = pair.lines()
    assert fast == reference
    lines = [json.loads(x) for x in fast.splitlines()]
    assert [line["level"] for line in lines] == ["error", "error"]
    assert all(line["exception"][0]["exc_type"] == "ValueError" for line in lines)
    assert all(line["exception"][0]["exc_value"] == "nope" for line in lines)
    assert all("exc_info" not in line for line in lines)


def test_a_value_orjson_refuses_fails_the_same_way_on_both_paths() -> None:
    pair = Pair()
    for logger in (pair.fast, pair.reference):
        with pytest.raises(TypeError):
            logger.info("bad key", mapping={1: "int keys are not JSON"})


def test_write_event_writes_the_dict_as_the_line_with_only_level_and_timestamp_added() -> None:
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    logger: Any = make_logger(stream=out, service="svc")  # the bound context is not added
    logger.write_event("warning", {"b": 1, "a": Custom(), "event": "e"})
    logger.write_event("warn", {"event": "f"})
    lines = taken(out)
    assert lines == [
        {"b": 1, "a": "custom ✓", "event": "e", "level": "warning", "timestamp": ANY_STAMP},
        {"event": "f", "level": "warning", "timestamp": ANY_STAMP},
    ]
    assert list(lines[0]) == ["b", "a", "event", "level", "timestamp"]  # the dict's own order


@pytest.mark.parametrize("live", [False, True])
def test_write_event_drops_lines_below_the_level_live_or_not(live: bool) -> None:
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    level: Live[str] | str = Live("warning", name="log_level") if live else "warning"
    logger: Any = make_logger(stream=out, level=level)
    logger.write_event("info", {"event": "a"})
    logger.write_event("error", {"event": "b"})
    if isinstance(level, Live):
        assert level.set("info")
        logger.write_event("info", {"event": "c"})
        assert [line["event"] for line in taken(out)] == ["b", "c"]
    else:
        assert [line["event"] for line in taken(out)] == ["b"]
