"""OrjsonLineRenderer and LineWriter: the lean JSON line pipeline of make_logger."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import structlog

from kitpy.log.render import LineWriter, OrjsonLineRenderer


class FakeNanos:
    """A wall clock in nanoseconds that tests move by hand."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def test_timestamp_is_iso_utc_with_microseconds_and_follows_the_clock() -> None:
    second = int(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp())
    clock = FakeNanos(second * 1_000_000_000 + 7_000)
    renderer = OrjsonLineRenderer(clock=clock)
    assert renderer.timestamp() == "2026-01-02T03:04:05.000007Z"
    clock.now += 999_990_000  # same second
    assert renderer.timestamp() == "2026-01-02T03:04:05.999997Z"
    clock.now += 10_000  # the next second: a new prefix
    assert renderer.timestamp() == "2026-01-02T03:04:06.000007Z"
    clock.now += 86_400 * 1_000_000_000  # a day later
    assert renderer.timestamp() == "2026-01-03T03:04:06.000007Z"


def test_line_has_level_timestamp_and_fields_and_maps_method_names() -> None:
    renderer = OrjsonLineRenderer(clock=FakeNanos(0))
    line = json.loads(renderer(None, "warn", {"event": "e", "n": 1}))
    stamp = "1970-01-01T00:00:00.000000Z"
    assert line == {"event": "e", "n": 1, "level": "warning", "timestamp": stamp}
    assert json.loads(renderer(None, "exception", {"event": "e"}))["level"] == "error"


def test_unencodable_values_use_structlog_hook_then_repr() -> None:
    class Custom:
        def __structlog__(self) -> str:
            return "custom!"

    class Plain:
        def __repr__(self) -> str:
            return "<plain>"

    line = json.loads(OrjsonLineRenderer()(None, "info", {"a": Custom(), "b": Plain()}))
    assert (line["a"], line["b"]) == ("custom!", "<plain>")


def test_exc_info_becomes_a_structured_exception() -> None:
    try:
        raise ValueError("nope")
    except ValueError as exc:
        line = json.loads(OrjsonLineRenderer()(None, "error", {"event": "e", "exc_info": exc}))
    assert "exc_info" not in line
    assert line["exception"][0]["exc_type"] == "ValueError"
    assert line["exception"][0]["exc_value"] == "nope"


def test_line_writer_writes_one_flushed_line_per_event() -> None:
    class Recording(io.BytesIO):
        flushes = 0

        def flush(self) -> None:
            self.flushes += 1
            super().flush()

    out = Recording()
    logger = structlog.wrap_logger(
        LineWriter(out), processors=[OrjsonLineRenderer()], context_class=dict
    )
    logger.info("a", x=1)
    logger.warning("b")
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [(x["event"], x["level"]) for x in lines] == [("a", "info"), ("b", "warning")]
    assert out.flushes == 2
