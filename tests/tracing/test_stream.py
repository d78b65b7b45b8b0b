"""stream_tracing: one span per stream, its counts, the status policy, the span inside it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, StatusCode

from kitpy import Context, InvalidArgument, Unavailable, named
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
from kitpy.log import stream_logging
from kitpy.testing import CapturedLogs, SpanRecorder
from kitpy.tracing import SPAN, call_tracing, log_fields, stream_tracing, with_span
from kitpy.tracing.context import SERVER_SPAN

RECEIVED, SENT = "kitpy.messages.received", "kitpy.messages.sent"


async def echo(ctx: Context, requests: AsyncIterator[str]) -> AsyncIterator[str]:
    """Bidi: one response per request; "bad" is a client fault, "down" a server fault."""
    async for request in requests:
        if request == "bad":
            raise InvalidArgument("bad message")
        if request == "down":
            raise Unavailable("backend down")
        yield request.upper()


async def test_one_span_per_stream_from_its_start_to_its_end_with_the_counts() -> None:
    spans = SpanRecorder()
    endpoint = stream_tracing(spans.tracer)(named_stream("echo")(echo))
    stream = endpoint(Context(), messages("a", "b", "c"))
    assert await anext(stream) == "A"
    assert spans.spans == ()  # open while the stream is read
    assert await collect(stream) == ["B", "C"]
    span = spans.one("echo")
    assert span.kind is SpanKind.INTERNAL  # as call_tracing
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes is not None
    assert (span.attributes[RECEIVED], span.attributes[SENT]) == (3, 3)
    assert "kitpy.code" not in span.attributes
    assert len(spans.spans) == 1


async def test_the_span_is_the_parent_inside_the_stream_and_log_lines_carry_its_trace() -> None:
    spans, logs = SpanRecorder(), CapturedLogs()
    trace_ids: list[str] = []

    @call_tracing(spans.tracer)
    @named("lookup")
    async def lookup(ctx: Context, word: str) -> str:
        return word.upper()

    async def looked_up(ctx: Context, requests: AsyncIterator[str]) -> AsyncIterator[str]:
        async for request in requests:
            trace_ids.append(log_fields(ctx)["trace_id"])  # what a log line inside would carry
            yield await lookup(ctx, request)

    endpoint = stream_chain(
        stream_tracing(spans.tracer, kind=SpanKind.SERVER),
        stream_logging(logs.logger, fields=log_fields),
    )(named_stream("words")(looked_up))
    assert await collect(endpoint(Context(), messages("a", "b"))) == ["A", "B"]

    stream_span = spans.one("words")
    assert stream_span.kind is SpanKind.SERVER
    assert stream_span.context is not None
    for child in spans.named("lookup"):
        spans.assert_child_of(child, stream_span)
    assert len(spans.named("lookup")) == 2
    trace_id = f"{stream_span.context.trace_id:032x}"
    assert trace_ids == [trace_id, trace_id]
    line = logs.assert_logged_once("stream call", method="words", code="OK")
    assert (line["trace_id"], line["received"], line["sent"]) == (trace_id, 2, 2)


async def test_the_stream_span_is_a_child_of_the_contexts_span() -> None:
    spans = SpanRecorder()
    parent = spans.tracer.start_span("caller")
    endpoint = stream_tracing(spans.tracer)(named_stream("echo")(echo))
    await collect(endpoint(with_span(Context(), parent), messages("a")))
    parent.end()
    spans.assert_chain(["caller", "echo"])


async def test_a_server_fault_mid_stream_sets_error_status_and_records_the_exception() -> None:
    spans = SpanRecorder()
    endpoint = stream_tracing(spans.tracer, name="echo")(echo)
    with pytest.raises(Unavailable):
        await collect(endpoint(Context(), messages("a", "b", "down", "never read")))
    span = spans.one("echo")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "backend down"
    assert span.attributes is not None
    assert span.attributes["kitpy.code"] == "UNAVAILABLE"
    assert (span.attributes[RECEIVED], span.attributes[SENT]) == (3, 2)
    assert [event.name for event in span.events] == ["exception"]


async def test_a_client_fault_mid_stream_leaves_the_status_unset_and_records_the_code() -> None:
    spans = SpanRecorder()
    endpoint = stream_tracing(spans.tracer, name="echo")(echo)
    with pytest.raises(InvalidArgument):
        await collect(endpoint(Context(), messages("a", "bad")))
    span = spans.one("echo")
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes is not None
    assert (span.attributes["kitpy.code"], span.attributes["error.type"]) == (
        "INVALID_ARGUMENT",
        "INVALID_ARGUMENT",
    )
    assert (span.attributes[RECEIVED], span.attributes[SENT]) == (2, 1)
    assert span.events == ()


async def test_a_reader_that_stops_early_ends_the_span_cancelled_after_the_cleanup() -> None:
    spans, cleaned = SpanRecorder(), list[str]()

    async def endless(ctx: Context, requests: AsyncIterator[str]) -> AsyncIterator[int]:
        try:
            await anext(requests)
            n = 0
            while True:
                n += 1
                yield n
        finally:
            cleaned.append("finally ran")
            assert ctx[SPAN].is_recording()  # the span is still open while the endpoint cleans up

    stream = stream_tracing(spans.tracer, name="endless")(endless)(Context(), messages("go"))
    assert [await anext(stream), await anext(stream)] == [1, 2]
    await close_stream(stream)
    assert cleaned == ["finally ran"]
    span = spans.one("endless")
    assert span.status.status_code is StatusCode.UNSET  # a cancellation is not an error
    assert span.attributes is not None
    assert span.attributes["kitpy.code"] == "CANCELLED"
    assert (span.attributes[RECEIVED], span.attributes[SENT]) == (1, 2)


async def test_a_cancelled_reader_ends_the_span_cancelled() -> None:
    spans = SpanRecorder()
    started = asyncio.Event()

    async def hangs(ctx: Context, requests: AsyncIterator[str]) -> AsyncIterator[str]:
        yield await anext(requests)
        started.set()
        await asyncio.sleep(3600)
        yield "never"

    stream = stream_tracing(spans.tracer, name="hangs")(hangs)(Context(), messages("a"))
    task = asyncio.create_task(collect(stream))
    async with asyncio.timeout(5):
        await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    span = spans.one("hangs")
    assert span.attributes is not None
    assert span.attributes["kitpy.code"] == "CANCELLED"
    assert span.status.status_code is StatusCode.UNSET


async def test_the_name_survives_stream_chains_and_falls_back_to_the_operation() -> None:
    spans = SpanRecorder()

    def forgetful(next: StreamEndpoint[Any, Any]) -> StreamEndpoint[Any, Any]:
        def endpoint(ctx: Context, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
            return next(ctx, requests)

        return endpoint

    named_one = stream_chain(stream_tracing(spans.tracer), forgetful)(named_stream("echo")(echo))
    assert endpoint_name(named_one) == "echo"
    await collect(named_one(Context(), messages("a")))
    anonymous = stream_tracing(spans.tracer, attributes={"team": "chat"})(echo)
    await collect(anonymous(Context().with_value(OPERATION, "/chat.Chat/Echo"), messages("a")))
    await collect(anonymous(Context(), messages("a")))
    assert [span.name for span in spans.spans] == ["echo", "/chat.Chat/Echo", "unknown"]
    assert spans.spans[1].attributes is not None
    assert spans.spans[1].attributes["team"] == "chat"
    renamed = stream_tracing(spans.tracer, name="talk")(named_stream("echo")(echo))
    assert endpoint_name(renamed) == "talk"


async def test_join_server_span_records_on_the_transports_span_and_leaves_it_open() -> None:
    spans = SpanRecorder()
    server_span = spans.tracer.start_span("/chat.Chat/Echo", kind=SpanKind.SERVER)
    ctx = Context().with_values({SPAN: server_span, SERVER_SPAN: server_span})
    seen_server_span: list[bool] = []

    async def nested(ctx: Context, requests: AsyncIterator[str]) -> AsyncIterator[str]:
        async for response in inner(ctx, requests):
            seen_server_span.append(ctx[SPAN] is server_span)
            yield response

    inner = stream_tracing(spans.tracer, name="inner", join_server_span=True)(echo)
    endpoint = stream_tracing(spans.tracer, join_server_span=True)(named_stream("echo")(nested))
    assert await collect(endpoint(ctx, messages("a", "b"))) == ["A", "B"]
    assert [span.name for span in spans.spans] == ["inner"]  # the SERVER span is still open
    server_span.end()
    joined = spans.one("/chat.Chat/Echo")
    assert joined.attributes is not None
    assert joined.attributes["kitpy.endpoint"] == "echo"
    assert (joined.attributes[RECEIVED], joined.attributes[SENT]) == (2, 2)
    spans.assert_child_of(spans.one("inner"), joined)  # a nested one starts its own span
    assert seen_server_span == [True, True]  # the joined endpoint runs in the SERVER span

    alone = stream_tracing(spans.tracer, name="alone", join_server_span=True)(echo)
    await collect(alone(Context(), messages("a")))  # no SERVER span to join: a span of its own
    assert spans.one("alone").parent is None


async def test_a_sampled_out_stream_still_runs_and_records_nothing() -> None:
    spans = SpanRecorder(sampler=ALWAYS_OFF)
    endpoint = stream_tracing(spans.tracer, name="echo")(echo)
    assert await collect(endpoint(Context(), messages("a", "b"))) == ["A", "B"]
    with pytest.raises(Unavailable):
        await collect(endpoint(Context(), messages("down")))
    assert spans.spans == ()
