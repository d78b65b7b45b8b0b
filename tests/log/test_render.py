"""OrjsonLineRenderer and LineWriter: the lean JSON line pipeline of make_logger."""

from __future__ import annotations

import asyncio
import contextvars
import io
import json
import os
import threading
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVarTuple, Unpack

import pytest
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

    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0
        self.flushed = asyncio.Event()  # set by each flush

    def flush(self) -> None:
        self.flushes += 1
        self.flushed.set()
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


_Ts = TypeVarTuple("_Ts")


class TimerCountingLoop(asyncio.SelectorEventLoop):
    """A real event loop that records the callbacks of the timers ``call_later`` sets."""

    def __init__(self) -> None:
        super().__init__()
        self.timer_callbacks: list[Callable[..., object]] = []

    def call_later(
        self,
        delay: float,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        self.timer_callbacks.append(callback)
        return super().call_later(delay, callback, *args, context=context)


def writer_timers(writer: LineWriter, main: Callable[[], Coroutine[Any, Any, None]]) -> int:
    """Run ``main()`` on a :class:`TimerCountingLoop`; how many timers ``writer`` set."""
    with asyncio.Runner(loop_factory=TimerCountingLoop) as runner:
        runner.run(main())
        loop = runner.get_loop()
        assert isinstance(loop, TimerCountingLoop)
        return sum(getattr(cb, "__self__", None) is writer for cb in loop.timer_callbacks)


async def flushed(out: Recording, count: int) -> None:
    """Wait (5 s at most) until ``out`` has been flushed ``count`` times."""
    async with asyncio.timeout(5):
        while out.flushes < count:
            out.flushed.clear()
            await out.flushed.wait()


def test_line_writer_in_a_loop_waits_with_one_timer_for_all_lines() -> None:
    out = Recording()
    writer = LineWriter(out, flush_interval=60)

    async def main() -> None:
        for n in range(3):
            writer.msg(b'{"n":%d}' % n)
            await asyncio.sleep(0)  # loop iterations pass: the lines wait for the timer
        assert out.flushes == 0
        assert out.getvalue().count(b"\n") == 3  # each line already written whole
        writer.flush()  # e.g. on the way out
        assert out.flushes == 1

    assert writer_timers(writer, main) == 1  # one timer for the three lines, none per line
    assert [json.loads(x)["n"] for x in out.getvalue().splitlines()] == [0, 1, 2]


def test_line_writer_flushes_after_the_interval_then_a_new_line_starts_a_new_timer() -> None:
    out = Recording()
    writer = LineWriter(out, flush_interval=0.01)

    async def main() -> None:
        writer.msg(b"a")
        writer.msg(b"b")
        await flushed(out, 1)
        writer.msg(b"c")
        await flushed(out, 2)

    assert writer_timers(writer, main) == 2
    assert out.getvalue() == b"a\nb\nc\n"


def test_line_writer_flushes_a_burst_by_size() -> None:
    out = Recording()
    writer = LineWriter(out, flush_interval=60)  # the default size, 64 KiB
    line = b"x" * 1023  # 1 KiB with its newline

    async def main() -> None:
        for _ in range(200):
            writer.msg(line)
        assert out.flushes == 3  # at 64, 128 and 192 KiB, in the same loop iteration
        writer.flush()

    assert writer_timers(writer, main) == 1  # the first line's timer; the size flushes keep it
    assert out.getvalue() == (line + b"\n") * 200


async def test_line_writer_lines_reach_a_real_pipe_within_the_interval() -> None:
    read_fd, write_fd = os.pipe()
    with os.fdopen(write_fd, "wb") as stream, os.fdopen(read_fd, "rb", buffering=0) as reader:
        os.set_blocking(read_fd, False)
        writer = LineWriter(stream, flush_interval=0.01)
        writer.msg(b"one")
        writer.msg(b"two")
        assert reader.read(100) is None  # still in the BufferedWriter: nothing in the pipe yet
        received = b""
        async with asyncio.timeout(5):
            while received != b"one\ntwo\n":
                await asyncio.sleep(0.005)
                received += reader.read(100) or b""


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
    writer = LineWriter(out, flush_interval=0.01)

    async def log_and_stop() -> None:
        writer.msg(b"late")
        loop.stop()  # the loop ends before the timer: its flush never runs

    async def log_and_wait() -> None:
        writer.msg(b"later")
        await flushed(out, 1)

    loop = asyncio.new_event_loop()
    task = loop.create_task(log_and_stop())
    loop.run_forever()
    assert task.done()
    loop.close()
    assert out.flushes == 0
    asyncio.run(log_and_wait())  # a new loop gets a timer of its own
    assert out.flushes == 1
    writer.msg(b"sync")  # and outside any loop it flushes at once
    assert out.flushes == 2
    assert out.getvalue() == b"late\nlater\nsync\n"


def test_line_writer_refuses_a_negative_interval_or_size() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        LineWriter(io.BytesIO(), flush_interval=-1)
    with pytest.raises(ValueError, match="must not be negative"):
        LineWriter(io.BytesIO(), flush_size=-1)
