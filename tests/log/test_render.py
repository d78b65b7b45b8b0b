"""OrjsonLineRenderer and LineWriter: the lean JSON line pipeline of make_logger."""

from __future__ import annotations

import asyncio
import io
import json
import os
import threading
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


class Recording(io.BytesIO):
    """A binary stream that counts its flushes."""

    flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def test_line_writer_outside_a_loop_flushes_every_line() -> None:
    out = Recording()
    logger = structlog.wrap_logger(
        LineWriter(out), processors=[OrjsonLineRenderer()], context_class=dict
    )
    logger.info("a", x=1)
    logger.warning("b")
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [(x["event"], x["level"]) for x in lines] == [("a", "info"), ("b", "warning")]
    assert out.flushes == 2


async def test_line_writer_in_a_loop_flushes_once_per_iteration() -> None:
    out = Recording()
    writer = LineWriter(out)
    for n in range(3):
        writer.msg(b'{"n":%d}' % n)
    assert out.flushes == 0  # all three wait for the end of this iteration ...
    assert out.getvalue().count(b"\n") == 3  # ... each already written whole
    await asyncio.sleep(0)
    assert out.flushes == 1
    writer.msg(b'{"n":3}')  # a new iteration schedules a new flush
    await asyncio.sleep(0)
    assert out.flushes == 2
    assert [json.loads(x)["n"] for x in out.getvalue().splitlines()] == [0, 1, 2, 3]


async def test_line_writer_lines_reach_a_real_pipe_by_the_next_iteration() -> None:
    read_fd, write_fd = os.pipe()
    with os.fdopen(write_fd, "wb") as stream, os.fdopen(read_fd, "rb", buffering=0) as reader:
        os.set_blocking(read_fd, False)
        writer = LineWriter(stream)
        writer.msg(b"one")
        writer.msg(b"two")
        assert reader.read(100) is None  # still in the BufferedWriter: nothing in the pipe yet
        await asyncio.sleep(0)
        assert reader.read(100) == b"one\ntwo\n"


async def test_line_writer_flush_each_line_and_other_threads_flush_at_once() -> None:
    out = Recording()
    LineWriter(out, flush_each_line=True).msg(b"a")
    assert out.flushes == 1
    shared = LineWriter(out)
    thread = threading.Thread(target=shared.msg, args=(b"b",))  # no running loop there
    thread.start()
    thread.join(timeout=5)
    assert out.flushes == 2
    assert out.getvalue() == b"a\nb\n"


def test_line_writer_is_not_stuck_when_a_loop_ends_before_its_flush() -> None:
    out = Recording()
    writer = LineWriter(out)

    async def log_and_leave() -> None:
        writer.msg(b"late")

    async def log_and_stop() -> None:
        writer.msg(b"late")
        loop.stop()  # the loop ends after this batch of callbacks: the flush is not in it

    loop = asyncio.new_event_loop()
    task = loop.create_task(log_and_stop())
    loop.run_forever()
    assert task.done()
    loop.close()
    assert out.flushes == 0
    asyncio.run(log_and_leave())  # a new loop schedules (and runs) its own flush
    assert out.flushes == 1
    writer.msg(b"sync")  # and outside any loop it flushes at once
    assert out.flushes == 2
    assert out.getvalue() == b"late\nlate\nsync\n"
