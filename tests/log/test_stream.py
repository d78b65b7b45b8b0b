"""stream_logging: one line per stream when it ends, with call_logging's fields and the counts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import pytest

from kitpy import Context, InvalidArgument, NotFound, Unavailable
from kitpy.context import OPERATION, REQUEST_ID
from kitpy.endpoint import endpoint_name
from kitpy.endpoint.stream import (
    StreamEndpoint,
    close_stream,
    collect,
    messages,
    named_stream,
    server_stream,
    stream_chain,
)
from kitpy.log import stream_logging
from kitpy.testing import CapturedLogs, FakeClock


async def echo(ctx: Context, requests: AsyncIterator[str]) -> AsyncIterator[str]:
    """Bidi: one response per request; "bad" is a client fault, "down" and "boom" server faults."""
    async for request in requests:
        if request == "bad":
            raise InvalidArgument("bad message")
        if request == "down":
            raise Unavailable("backend down")
        if request == "boom":
            raise RuntimeError("secret internals")
        yield request.upper()


async def test_a_stream_logs_one_info_line_at_its_end_with_its_counts() -> None:
    logs, clock = CapturedLogs(), FakeClock()

    async def pairs(ctx: Context, requests: AsyncIterator[int]) -> AsyncIterator[int]:
        async for n in requests:
            clock.advance(0.5)
            yield n
            yield n * 10

    endpoint = stream_logging(logs.logger, clock=clock)(named_stream("pairs")(pairs))
    stream = endpoint(Context().with_value(REQUEST_ID, "r-1"), messages(1, 2, 3))
    assert await anext(stream) == 1
    assert logs.entries == []  # nothing until the stream ends
    assert await collect(stream) == [10, 2, 20, 3, 30]
    entry = logs.assert_logged_once("stream call", method="pairs", code="OK")
    assert entry["log_level"] == "info"
    assert (entry["received"], entry["sent"], entry["request_id"]) == (3, 6, "r-1")
    assert entry["took"] == pytest.approx(1.5)
    assert "error" not in entry
    assert len(logs.entries) == 1


async def test_a_server_stream_counts_its_one_request_and_a_missing_one_is_invalid() -> None:
    logs = CapturedLogs()

    @server_stream
    async def words(ctx: Context, text: str) -> AsyncIterator[str]:
        for word in text.split():
            yield word

    endpoint = stream_logging(logs.logger, name="words")(words)
    assert await collect(endpoint(Context(), messages("go kit rocks"))) == ["go", "kit", "rocks"]
    with pytest.raises(InvalidArgument):
        await collect(endpoint(Context(), messages()))
    ok, missing = logs.entries
    assert (ok["code"], ok["received"], ok["sent"]) == ("OK", 1, 3)
    assert (missing["code"], missing["received"], missing["sent"]) == ("INVALID_ARGUMENT", 0, 0)
    assert missing["log_level"] == "warning"


async def test_a_client_fault_mid_stream_logs_warning_with_the_counts_so_far() -> None:
    logs = CapturedLogs()
    endpoint = stream_logging(logs.logger, name="echo")(echo)
    with pytest.raises(InvalidArgument):
        await collect(endpoint(Context(), messages("a", "b", "bad", "never read")))
    entry = logs.assert_logged_once(method="echo", code="INVALID_ARGUMENT")
    assert entry["log_level"] == "warning"
    assert entry["error"] == "bad message"
    assert (entry["received"], entry["sent"]) == (3, 2)
    assert "exc_info" not in entry


@pytest.mark.parametrize(
    ("bad", "code", "message", "exc_type"),
    [
        ("down", "UNAVAILABLE", "backend down", Unavailable),
        ("boom", "UNKNOWN", "secret internals", RuntimeError),
    ],
)
async def test_a_server_fault_mid_stream_logs_error_with_the_exception(
    bad: str, code: str, message: str, exc_type: type[BaseException]
) -> None:
    logs = CapturedLogs()
    endpoint = stream_logging(logs.logger, name="echo")(echo)
    with pytest.raises(exc_type):
        await collect(endpoint(Context(), messages("a", bad)))
    entry = logs.assert_logged_once(method="echo", code=code)
    assert entry["log_level"] == "error"
    assert entry["error"] == message
    assert isinstance(entry["exc_info"], exc_type)
    assert (entry["received"], entry["sent"]) == (2, 1)


async def test_an_error_before_the_endpoint_yields_an_iterator_is_logged() -> None:
    logs = CapturedLogs()

    def refuses(ctx: Context, requests: AsyncIterator[str]) -> AsyncIterator[str]:
        raise NotFound("no such topic")  # a plain function that fails before returning a stream

    endpoint = stream_logging(logs.logger, name="topic")(refuses)
    with pytest.raises(NotFound):
        await collect(endpoint(Context(), messages("t")))
    entry = logs.assert_logged_once(method="topic", code="NOT_FOUND")
    assert (entry["received"], entry["sent"], entry["log_level"]) == (0, 0, "warning")


def _endless(cleaned: list[str]) -> StreamEndpoint[str, int]:
    async def endless(ctx: Context, requests: AsyncIterator[str]) -> AsyncIterator[int]:
        try:
            await anext(requests)
            n = 0
            while True:
                n += 1
                yield n
        finally:
            cleaned.append("finally ran")

    return named_stream("endless")(endless)


@pytest.mark.parametrize("close", ["close_stream", "aclose"])
async def test_a_reader_that_stops_early_logs_cancelled_after_the_endpoint_cleaned_up(
    close: str,
) -> None:
    logs, cleaned = CapturedLogs(), list[str]()
    stream = stream_logging(logs.logger)(_endless(cleaned))(Context(), messages("go"))
    assert [await anext(stream) for _ in range(3)] == [1, 2, 3]
    if close == "close_stream":
        await close_stream(stream)
    else:
        assert isinstance(stream, AsyncGenerator)  # what stream_logging returns
        await stream.aclose()
    assert cleaned == ["finally ran"]
    entry = logs.assert_logged_once(method="endless", code="CANCELLED")
    assert entry["log_level"] == "warning"
    assert entry["error"] == "the stream was closed before its end"
    assert (entry["received"], entry["sent"]) == (1, 3)
    assert "exc_info" not in entry


async def test_a_stream_whose_reader_never_asked_for_a_response_logs_nothing() -> None:
    logs, cleaned = CapturedLogs(), list[str]()
    stream = stream_logging(logs.logger)(_endless(cleaned))(Context(), messages("go"))
    await close_stream(stream)
    assert logs.entries == []
    assert cleaned == []  # the endpoint never ran either


async def test_a_cancelled_reader_logs_cancelled_and_the_endpoint_cleans_up() -> None:
    logs, cleaned = CapturedLogs(), list[str]()
    started = asyncio.Event()

    async def hangs(ctx: Context, requests: AsyncIterator[str]) -> AsyncIterator[str]:
        try:
            async for request in requests:
                yield request
            started.set()
            await asyncio.sleep(3600)
            yield "never"
        finally:
            cleaned.append("finally ran")

    stream = stream_logging(logs.logger, name="hangs")(hangs)(Context(), messages("a", "b"))
    task = asyncio.create_task(collect(stream))
    async with asyncio.timeout(5):
        await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == ["finally ran"]
    entry = logs.assert_logged_once(method="hangs", code="CANCELLED")
    assert entry["log_level"] == "warning"
    assert (entry["received"], entry["sent"]) == (2, 2)


async def test_an_endpoint_that_stops_reading_early_is_counted_by_what_it_read() -> None:
    logs = CapturedLogs()

    async def first_two(ctx: Context, requests: AsyncIterator[int]) -> AsyncIterator[int]:
        yield await anext(requests) + await anext(requests)

    endpoint = stream_logging(logs.logger, name="first_two")(first_two)
    assert await collect(endpoint(Context(), messages(1, 2, 3, 4))) == [3]
    entry = logs.assert_logged_once(code="OK")
    assert (entry["received"], entry["sent"]) == (2, 1)


async def test_the_name_survives_stream_chains_and_falls_back_to_the_operation() -> None:
    logs = CapturedLogs()

    def forgetful(next: StreamEndpoint[Any, Any]) -> StreamEndpoint[Any, Any]:
        def endpoint(ctx: Context, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
            return next(ctx, requests)

        return endpoint  # drops the name: stream_chain gives it back

    named = stream_chain(stream_logging(logs.logger), forgetful)(named_stream("echo")(echo))
    assert endpoint_name(named) == "echo"
    await collect(named(Context(), messages("a")))
    logs.assert_logged_once(method="echo", code="OK")

    logs.clear()
    anonymous = stream_logging(logs.logger)(echo)
    assert endpoint_name(anonymous) is None
    await collect(anonymous(Context().with_value(OPERATION, "/chat.Chat/Echo"), messages("a")))
    await collect(anonymous(Context(), messages("a")))
    assert [entry["method"] for entry in logs.entries] == ["/chat.Chat/Echo", "unknown"]

    logs.clear()
    renamed = stream_logging(logs.logger, name="talk")(named_stream("echo")(echo))
    assert endpoint_name(renamed) == "talk"
    await collect(renamed(Context(), messages("a")))
    logs.assert_logged_once(method="talk")


async def test_extra_fields_and_the_request_id_which_wins() -> None:
    logs = CapturedLogs()
    endpoint = stream_logging(
        logs.logger, event="chat", fields=lambda ctx: {"tenant": "acme", "request_id": "field"}
    )(named_stream("echo")(echo))
    await collect(endpoint(Context().with_value(REQUEST_ID, "r-1"), messages("a")))
    await collect(endpoint(Context(), messages("a")))
    assert [entry["request_id"] for entry in logs.find("chat")] == ["r-1", "field"]
    assert all(entry["tenant"] == "acme" for entry in logs.entries)


async def test_a_filtered_level_drops_the_line_but_not_the_stream() -> None:
    logs = CapturedLogs(level=40)  # logging.ERROR
    endpoint = stream_logging(logs.logger, name="echo")(echo)
    assert await collect(endpoint(Context(), messages("a", "b"))) == ["A", "B"]
    with pytest.raises(Unavailable):
        await collect(endpoint(Context(), messages("down")))
    assert [entry["code"] for entry in logs.entries] == ["UNAVAILABLE"]
