"""stream_metrics: streams by (method, code), their durations, messages by (method, direction)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kitpy import Context, InvalidArgument, Unavailable
from kitpy.context import OPERATION
from kitpy.endpoint import endpoint_name
from kitpy.endpoint.stream import (
    StreamEndpoint,
    close_stream,
    collect,
    messages,
    named_stream,
    stream_chain,
)
from kitpy.metrics import stream_metrics
from kitpy.metrics.prometheus import STREAM_BUCKETS, CollectorRegistry, stream_instruments
from kitpy.testing import FakeClock, StreamMetrics


async def echo(ctx: Context, requests: AsyncIterator[str]) -> AsyncIterator[str]:
    """Bidi: one response per request; "bad" is a client fault, "down" a server fault."""
    async for request in requests:
        if request == "bad":
            raise InvalidArgument("bad message")
        if request == "down":
            raise Unavailable("backend down")
        yield request.upper()


def metered(metrics: StreamMetrics, **options: Any) -> Any:
    return stream_metrics(metrics.streams, metrics.duration, metrics.messages, **options)


async def test_a_stream_is_counted_once_with_its_duration_and_its_messages() -> None:
    metrics, clock = StreamMetrics(), FakeClock()

    async def doubled(ctx: Context, requests: AsyncIterator[int]) -> AsyncIterator[int]:
        async for n in requests:
            clock.advance(0.25)
            yield n
            yield n

    endpoint = metered(metrics, clock=clock)(named_stream("doubled")(doubled))
    assert await collect(endpoint(Context(), messages(1, 2))) == [1, 1, 2, 2]
    assert await collect(endpoint(Context(), messages(3))) == [3, 3]
    metrics.assert_stream(method="doubled", code="OK", streams=2, received=3, sent=6)
    assert metrics.durations(method="doubled") == [pytest.approx(0.5), pytest.approx(0.25)]
    assert metrics.counts() == {("doubled", "OK"): 2}


async def test_messages_are_counted_as_they_pass_so_a_long_stream_shows_while_it_lasts() -> None:
    metrics = StreamMetrics()
    endpoint = metered(metrics, name="echo")(echo)
    stream = endpoint(Context(), messages("a", "b", "c"))
    assert [await anext(stream), await anext(stream)] == ["A", "B"]
    assert (metrics.received(method="echo"), metrics.sent(method="echo")) == (2, 2)
    assert metrics.count(method="echo", code="OK") == 0  # the stream is counted when it ends
    assert await collect(stream) == ["C"]
    metrics.assert_stream(method="echo", received=3, sent=3)


async def test_a_failure_mid_stream_is_counted_under_its_code_with_the_messages_so_far() -> None:
    metrics = StreamMetrics()
    endpoint = metered(metrics, name="echo")(echo)
    with pytest.raises(InvalidArgument):
        await collect(endpoint(Context(), messages("a", "bad", "never read")))
    metrics.assert_stream(method="echo", code="INVALID_ARGUMENT", received=2, sent=1)
    with pytest.raises(Unavailable):
        await collect(endpoint(Context(), messages("down")))
    metrics.assert_stream(method="echo", code="UNAVAILABLE", received=3, sent=1)
    assert metrics.count(method="echo", code="OK") == 0


async def test_a_reader_that_stops_early_is_counted_cancelled_after_the_endpoint_cleaned_up() -> (
    None
):
    metrics, cleaned = StreamMetrics(), list[str]()

    async def endless(ctx: Context, requests: AsyncIterator[str]) -> AsyncIterator[int]:
        try:
            await anext(requests)
            n = 0
            while True:
                n += 1
                yield n
        finally:
            cleaned.append("finally ran")

    stream = metered(metrics, name="endless")(endless)(Context(), messages("go"))
    assert [await anext(stream) for _ in range(4)] == [1, 2, 3, 4]
    await close_stream(stream)
    assert cleaned == ["finally ran"]
    metrics.assert_stream(method="endless", code="CANCELLED", received=1, sent=4)


async def test_a_cancelled_reader_is_counted_cancelled() -> None:
    metrics = StreamMetrics()
    started = asyncio.Event()

    async def hangs(ctx: Context, requests: AsyncIterator[str]) -> AsyncIterator[str]:
        yield await anext(requests)
        started.set()
        await asyncio.sleep(3600)
        yield "never"

    task = asyncio.create_task(
        collect(metered(metrics, name="hangs")(hangs)(Context(), messages("a")))
    )
    async with asyncio.timeout(5):
        await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    metrics.assert_stream(method="hangs", code="CANCELLED", received=1, sent=1)


async def test_the_name_survives_stream_chains_and_falls_back_to_the_operation() -> None:
    metrics = StreamMetrics()

    def forgetful(next: StreamEndpoint[Any, Any]) -> StreamEndpoint[Any, Any]:
        def endpoint(ctx: Context, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
            return next(ctx, requests)

        return endpoint

    named = stream_chain(metered(metrics), forgetful)(named_stream("echo")(echo))
    assert endpoint_name(named) == "echo"
    await collect(named(Context(), messages("a")))
    metrics.assert_stream(method="echo", received=1, sent=1)

    anonymous = metered(metrics)(echo)
    await collect(anonymous(Context().with_value(OPERATION, "/chat.Chat/Echo"), messages("a")))
    await collect(anonymous(Context(), messages("a", "b")))
    metrics.assert_stream(method="/chat.Chat/Echo", received=1, sent=1)
    metrics.assert_stream(method="unknown", received=2, sent=2)

    renamed = metered(metrics, name="talk")(named_stream("echo")(echo))
    assert endpoint_name(renamed) == "talk"
    await collect(renamed(Context(), messages("a")))
    metrics.assert_stream(method="talk")


async def test_the_test_helper_says_what_it_found() -> None:
    metrics = StreamMetrics()
    await collect(metered(metrics, name="echo")(echo)(Context(), messages("a")))
    with pytest.raises(AssertionError, match=r"expected 5 sent, got 1"):
        metrics.assert_stream(method="echo", sent=5)
    with pytest.raises(AssertionError, match=r"expected 1 streams, counted 0"):
        metrics.assert_stream(method="echo", code="UNAVAILABLE")


async def test_the_prometheus_instruments_expose_streams_durations_and_messages() -> None:
    registry = CollectorRegistry()
    streams, duration, counted = stream_instruments(registry, namespace="chat")
    endpoint = stream_metrics(streams, duration, counted, name="echo")(echo)
    assert await collect(endpoint(Context(), messages("a", "b"))) == ["A", "B"]
    with pytest.raises(InvalidArgument):
        await collect(endpoint(Context(), messages("bad")))

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert sample("chat_server_streams_total", method="echo", code="OK") == 1
    assert sample("chat_server_streams_total", method="echo", code="INVALID_ARGUMENT") == 1
    assert sample("chat_server_stream_duration_seconds_count", method="echo", code="OK") == 1
    assert sample("chat_server_stream_messages_total", method="echo", direction="received") == 3
    assert sample("chat_server_stream_messages_total", method="echo", direction="sent") == 2
    top = sample(
        "chat_server_stream_duration_seconds_bucket", method="echo", code="OK", le="3600.0"
    )
    assert STREAM_BUCKETS[-1] == 3600.0
    assert top == 1
