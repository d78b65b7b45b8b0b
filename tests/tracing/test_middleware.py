"""call_tracing: a span per call, fault-aware status, explicit Context as the parent."""

from __future__ import annotations

import pytest
from opentelemetry import baggage as otel_baggage
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, StatusCode
from opentelemetry.util.types import AttributeValue

from kitpy import Context, InvalidArgument, Unavailable, chain, named
from kitpy.testing import SpanRecorder
from kitpy.tracing import (
    SPAN,
    baggage,
    call_tracing,
    current_span,
    inject,
    log_fields,
    otel_context,
    set_span_attributes,
    w3c_propagator,
    with_baggage,
)


async def work(ctx: Context, request: str) -> str:
    current_span(ctx).set_attribute("app.request", request)
    if request == "bad":
        raise InvalidArgument("bad input")
    if request == "down":
        raise Unavailable("db down")
    return request.upper()


async def test_one_span_per_call_named_after_the_endpoint() -> None:
    spans = SpanRecorder()
    endpoint = call_tracing(spans.tracer, attributes={"app.kind": "test"})(named("work")(work))
    assert await endpoint(Context(), "a") == "A"
    span = spans.one("work")
    assert span.kind is SpanKind.INTERNAL
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes == {"app.kind": "test", "app.request": "a"}
    assert span.parent is None


async def test_server_fault_sets_error_status_and_records_the_exception() -> None:
    spans = SpanRecorder()
    endpoint = call_tracing(spans.tracer, name="Work")(work)
    with pytest.raises(Unavailable):
        await endpoint(Context(), "down")
    span = spans.one("Work")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "db down"
    assert span.attributes is not None
    assert span.attributes["error.type"] == "UNAVAILABLE"
    assert [event.name for event in span.events] == ["exception"]


async def test_client_fault_is_an_attribute_not_an_error() -> None:
    spans = SpanRecorder()
    endpoint = call_tracing(spans.tracer)(named("work")(work))
    with pytest.raises(InvalidArgument):
        await endpoint(Context(), "bad")
    span = spans.one("work")
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes is not None
    assert span.attributes["kitpy.code"] == "INVALID_ARGUMENT"
    assert span.events == ()


async def test_nested_layers_make_parent_and_child_spans() -> None:
    spans = SpanRecorder()
    seen: list[Span] = []

    async def inner(ctx: Context, request: str) -> str:
        seen.append(ctx[SPAN])
        return request

    stack = chain(
        call_tracing(spans.tracer, name="outer", kind=SpanKind.SERVER),
        call_tracing(spans.tracer, name="inner"),
    )
    await stack(inner)(Context(), "x")
    outer_span, inner_span = spans.assert_chain(["outer", "inner"])
    assert outer_span.kind is SpanKind.SERVER
    assert seen[0].get_span_context() == inner_span.context


async def test_the_ambient_otel_context_is_ignored() -> None:
    spans = SpanRecorder()
    other = SpanRecorder()
    endpoint = call_tracing(spans.tracer)(named("work")(work))
    with trace.use_span(other.tracer.start_span("ambient"), end_on_exit=True):
        await endpoint(Context(), "a")
    span = spans.one("work")
    assert span.parent is None  # not a child of the ambient span
    assert spans.trace_ids() != other.trace_ids()


async def test_sampled_out_calls_export_nothing_but_still_propagate() -> None:
    spans = SpanRecorder(sampler=ALWAYS_OFF)
    contexts: list[Context] = []

    async def inner(ctx: Context, request: str) -> str:
        contexts.append(ctx)
        return request

    endpoint = call_tracing(spans.tracer)(named("inner")(inner))
    assert await endpoint(Context(), "x") == "x"
    assert spans.spans == ()
    span = contexts[0][SPAN]
    assert not span.is_recording()
    assert span.get_span_context().is_valid
    assert not span.get_span_context().trace_flags.sampled
    headers: dict[str, str] = {}
    inject(w3c_propagator(), contexts[0], headers)
    trace_id = f"{span.get_span_context().trace_id:032x}"
    assert headers["traceparent"].startswith(f"00-{trace_id}-")
    assert int(headers["traceparent"][-2:], 16) & 0x01 == 0  # downstream sees "not sampled"


async def test_parent_based_ratio_sampling_follows_the_parent() -> None:
    spans = SpanRecorder(sampler=ParentBased(TraceIdRatioBased(0.0)))
    stack = chain(
        call_tracing(spans.tracer, name="outer"),
        call_tracing(spans.tracer, name="inner"),
    )
    await stack(work)(Context(), "x")
    assert spans.spans == ()  # the root was dropped, so was its child


async def test_log_fields_and_baggage() -> None:
    spans = SpanRecorder()
    fields: list[dict[str, str]] = []
    bags: list[dict[str, object]] = []

    async def inner(ctx: Context, request: str) -> str:
        fields.append(log_fields(ctx))
        bags.append(dict(baggage(ctx)))
        return request

    endpoint = call_tracing(spans.tracer)(named("inner")(inner))
    await endpoint(with_baggage(Context(), "tenant", "acme"), "x")
    span = spans.one("inner")
    assert span.context is not None
    assert fields == [
        {"trace_id": f"{span.context.trace_id:032x}", "span_id": f"{span.context.span_id:016x}"}
    ]
    assert bags == [{"tenant": "acme"}]
    assert log_fields(Context()) == {}
    assert baggage(Context()) == {}
    assert otel_baggage.get_all() == {}  # the ambient context was never touched


def test_log_fields_pad_small_ids_to_w3c_width() -> None:
    span = trace.NonRecordingSpan(trace.SpanContext(0xABC, 0x1F, False))
    ctx = Context().with_value(SPAN, span)
    assert log_fields(ctx) == {"trace_id": "0" * 29 + "abc", "span_id": "0" * 14 + "1f"}
    for trace_id, span_id in ((0, 0x1F), (0xABC, 0), (2**128, 0x1F), (0xABC, 2**64)):
        invalid = trace.NonRecordingSpan(trace.SpanContext(trace_id, span_id, False))
        assert log_fields(Context().with_value(SPAN, invalid)) == {}


async def test_otel_context_combines_baggage_and_current_span() -> None:
    spans = SpanRecorder()
    seen: list[Context] = []

    async def inner(ctx: Context, request: str) -> str:
        seen.append(ctx)
        return request

    await call_tracing(spans.tracer)(named("inner")(inner))(with_baggage(Context(), "k", "v"), "x")
    combined = otel_context(seen[0])
    assert trace.get_current_span(combined) is seen[0][SPAN]
    assert otel_baggage.get_all(combined) == {"k": "v"}
    assert otel_context(Context()) == {}
    headers: dict[str, str] = {}
    inject(w3c_propagator(), Context(), headers)
    assert headers == {}  # nothing to propagate, and the ambient context is not consulted


VALUES: list[AttributeValue] = [7, "text", 0.5, True, ["a", "b"], (1, 2)]


@pytest.mark.parametrize("size", [0, 1, 2, 3, 6])
def test_set_span_attributes_sets_what_set_attributes_would(size: int) -> None:
    recorder = SpanRecorder()
    attributes = {f"k{i}": VALUES[i] for i in range(size)}
    one_call = recorder.tracer.start_span("one call")
    one_call.set_attributes(attributes)
    one_call.end()
    kitpy_way = recorder.tracer.start_span("kitpy")
    set_span_attributes(kitpy_way, attributes)
    kitpy_way.end()
    expected = dict(recorder.one("one call").attributes or {})
    assert len(expected) == size
    assert dict(recorder.one("kitpy").attributes or {}) == expected
    set_span_attributes(trace.INVALID_SPAN, attributes)  # a span that records nothing: no-op
