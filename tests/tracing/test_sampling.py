"""HeadSampler: kitpy samples before the SDK, and OpenTelemetry's promises still hold.

Everything runs on the real OpenTelemetry SDK: a ``TracerProvider`` given one
:class:`~kitpy.tracing.HeadSampler` as sampler and id generator, an
``InMemorySpanExporter`` behind a ``SimpleSpanProcessor``, and a processor that
counts ``on_start`` / ``on_end``.  The samplers below are real ``Sampler``
subclasses that count how often they are asked.  The last tests serve requests
over real sockets (aiohttp and grpc.aio on 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import random
import re
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import grpc
import pytest
from aiohttp import web
from multidict import CIMultiDict
from opentelemetry.context import Context as OtelContext
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    StaticSampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    Span,
    SpanKind,
    StatusCode,
    Tracer,
    TraceState,
)
from opentelemetry.util.types import Attributes

from kitpy import Context, Endpoint, Unavailable
from kitpy.log import call_logging, make_logger
from kitpy.tracing import (
    HeadSampler,
    call_tracing,
    current_span,
    extract,
    http_client_before,
    http_server_before,
    http_server_finalizer,
    inject,
    log_fields,
    otel_context,
    span_starter,
    w3c_propagator,
    with_span,
)
from kitpy.tracing.sampling import DroppedSpan
from kitpy.transport import http as khttp
from tests.tracing.grpc_rig import FULL_METHOD, serve_traced

NO_PARENT = OtelContext()
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
REMOTE_TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
REMOTE_SPAN = 0x00F067AA0BA902B7


def traceparent(flags: str) -> str:
    """A W3C ``traceparent`` for the remote span above, with ``flags`` (two hex digits)."""
    return f"00-{REMOTE_TRACE:032x}-{REMOTE_SPAN:016x}-{flags}"


class CountingSampler(Sampler):
    """Wraps a sampler and counts how often it is asked (thread-safe)."""

    def __init__(self, inner: Sampler) -> None:
        self.inner = inner
        self.calls = 0
        self._lock = threading.Lock()

    def should_sample(
        self,
        parent_context: OtelContext | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        with self._lock:
            self.calls += 1
        return self.inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"Counting{{{self.inner.get_description()}}}"


class KeepSampler(Sampler):
    """Records a span whose name starts with ``keep`` or whose ``keep`` attribute is true.

    Its result adds ``decided.for`` (the span's ``req`` attribute, else its
    name) to the span's attributes and a ``kitpy=t`` tracestate entry, and it
    remembers the trace id each ``req`` was decided on -- so a test sees whether
    the SDK started a span with the very decision and trace id made for it.
    """

    def __init__(self) -> None:
        self.calls = 0
        self.trace_ids: dict[str, int] = {}
        self._lock = threading.Lock()

    def should_sample(
        self,
        parent_context: OtelContext | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        given = dict(attributes or {})
        request = str(given.get("req", name))
        with self._lock:
            self.calls += 1
            self.trace_ids[request] = trace_id
        keep = name.startswith("keep") or given.get("keep") is True
        return SamplingResult(
            Decision.RECORD_AND_SAMPLE if keep else Decision.DROP,
            {**given, "decided.for": request},
            TraceState([("kitpy", "t")]),
        )

    def get_description(self) -> str:
        return "KeepSampler"


class CountingProcessor(SpanProcessor):
    """Counts the spans the SDK starts and ends (thread-safe)."""

    def __init__(self) -> None:
        self.started = 0
        self.ended = 0
        self._lock = threading.Lock()

    def on_start(self, span: SdkSpan, parent_context: OtelContext | None = None) -> None:
        with self._lock:
            self.started += 1

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            self.ended += 1


class SeededIds(IdGenerator):
    """Random ids from a seed: two generators with one seed give the same trace ids."""

    def __init__(self, seed: int) -> None:
        self._trace_ids = random.Random(seed)
        self._span_ids = random.Random(seed + 1)

    def generate_trace_id(self) -> int:
        return self._trace_ids.getrandbits(128) or 1

    def generate_span_id(self) -> int:
        return self._span_ids.getrandbits(64) or 1

    def is_trace_id_random(self) -> bool:
        return True


class SequentialIds(IdGenerator):
    """Trace ids ``first``, ``first + 1``, ... (shows which generator the SDK used)."""

    def __init__(self, first: int) -> None:
        self._trace_ids = itertools.count(first)
        self._span_ids = itertools.count(1)

    def generate_trace_id(self) -> int:
        return next(self._trace_ids)

    def generate_span_id(self) -> int:
        return next(self._span_ids)


@dataclass
class Rig:
    """A provider with an in-memory exporter and a counting processor, and its tracer."""

    provider: TracerProvider
    exporter: InMemorySpanExporter
    counts: CountingProcessor
    tracer: Tracer

    def exported(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()


def make_rig(sampler: Sampler, *, head: bool = True, ids: IdGenerator | None = None) -> Rig:
    """A HeadSampler provider wrapping ``sampler`` (or, ``head=False``, the plain SDK's)."""
    if head:
        return make_rig_for(HeadSampler(sampler, ids=ids))
    return rig_of(TracerProvider(sampler=sampler, id_generator=ids, shutdown_on_exit=False))


def make_rig_for(head: HeadSampler) -> Rig:
    """A provider given ``head`` as its sampler and its id generator."""
    return rig_of(TracerProvider(sampler=head, id_generator=head, shutdown_on_exit=False))


def rig_of(provider: TracerProvider) -> Rig:
    """``provider`` with an in-memory exporter and a counting processor."""
    exporter = InMemorySpanExporter()
    counts = CountingProcessor()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(counts)
    return Rig(provider, exporter, counts, provider.get_tracer("kitpy.test"))


def run_span(
    tracer: Tracer,
    name: str,
    *,
    parent: OtelContext = NO_PARENT,
    attributes: Attributes = None,
) -> Span:
    """Start a span the way kitpy's hooks do, and end it."""
    span = span_starter(tracer)(name, parent, SpanKind.SERVER, attributes)
    span.end()
    return span


def ids_of(span: Span | ReadableSpan) -> tuple[int, int]:
    """``(trace id, span id)`` of a live or an exported span."""
    context = span.get_span_context()
    assert context is not None
    return context.trace_id, context.span_id


def propagated(span: Span) -> str:
    """The ``traceparent`` kitpy's ``inject`` writes for a Context whose span is ``span``."""
    carrier: dict[str, str] = {}
    inject(w3c_propagator(), with_span(Context(), span), carrier)
    return carrier["traceparent"]


# -- 1. the configured sampler is honoured, and asked once ---------------------------------


def test_always_off_exports_nothing_but_every_span_has_valid_ids() -> None:
    rig = make_rig(ALWAYS_OFF)
    spans = [run_span(rig.tracer, f"op {i}") for i in range(50)]
    assert rig.exported() == ()
    assert rig.counts.started == rig.counts.ended == 0
    for span in spans:
        context = span.get_span_context()
        assert not span.is_recording()
        assert context.is_valid
        assert not context.trace_flags.sampled
    assert len({ids_of(span)[0] for span in spans}) == 50  # a new trace each
    assert len({ids_of(span)[1] for span in spans}) == 50


def test_always_on_exports_every_span() -> None:
    rig = make_rig(ALWAYS_ON)
    spans = [run_span(rig.tracer, f"op {i}") for i in range(50)]
    assert [span.name for span in rig.exported()] == [f"op {i}" for i in range(50)]
    assert [ids_of(span) for span in rig.exported()] == [ids_of(span) for span in spans]
    assert all(span.get_span_context().trace_flags.sampled for span in spans)


def test_a_custom_sampler_decides_by_name_and_attributes_and_is_asked_once() -> None:
    sampler = KeepSampler()
    rig = make_rig(sampler)
    run_span(rig.tracer, "keep by name")
    run_span(rig.tracer, "drop by name")
    run_span(rig.tracer, "by attribute", attributes={"keep": True, "req": "a"})
    run_span(rig.tracer, "by attribute", attributes={"keep": False, "req": "b"})
    assert sampler.calls == 4  # recorded or dropped, one decision a span
    exported = {
        str(span.attributes["decided.for"]): span for span in rig.exported() if span.attributes
    }
    assert sorted(exported) == ["a", "keep by name"]
    kept = exported["a"]
    assert kept.attributes is not None
    assert kept.attributes["keep"] is True  # the start attributes, through the decision
    assert kept.context is not None
    assert kept.context.trace_state.get("kitpy") == "t"  # the decision's tracestate
    assert rig.counts.started == rig.counts.ended == 2


def test_a_dropped_span_carries_the_decisions_tracestate() -> None:
    rig = make_rig(KeepSampler())
    span = run_span(rig.tracer, "drop me")
    assert span.get_span_context().trace_state.get("kitpy") == "t"
    carrier: dict[str, str] = {}
    inject(w3c_propagator(), with_span(Context(), span), carrier)
    assert carrier["tracestate"] == "kitpy=t"


# -- 2. a ratio sampler decides on the trace id the SDK uses ------------------------------


def test_trace_id_ratio_decides_on_the_trace_id_the_span_gets() -> None:
    ratio = TraceIdRatioBased(0.5)
    sampler = CountingSampler(ParentBased(ratio))
    rig = make_rig(sampler)
    spans = [run_span(rig.tracer, "root") for _ in range(2000)]
    exported = {ids_of(span) for span in rig.exported()}
    dropped = [span for span in spans if ids_of(span) not in exported]
    assert sampler.calls == 2000
    assert 850 <= len(exported) <= 1150  # ~0.5 of 2000; sigma is ~22
    assert len(exported) + len(dropped) == 2000
    limit = TraceIdRatioBased.TRACE_ID_LIMIT
    assert all(trace_id & limit < ratio.bound for trace_id, _ in exported)
    assert all(ids_of(span)[0] & limit >= ratio.bound for span in dropped)
    assert rig.counts.started == rig.counts.ended == len(exported)


# -- 3. a remote parent's decision is continued -------------------------------------------


def test_a_sampled_remote_parent_is_continued() -> None:
    rig = make_rig(ParentBased(TraceIdRatioBased(0.0)))
    parent = extract(w3c_propagator(), {"traceparent": traceparent("01")})
    span = run_span(rig.tracer, "GET /", parent=parent)
    (exported,) = rig.exported()
    assert ids_of(exported) == ids_of(span)
    assert ids_of(span)[0] == REMOTE_TRACE
    assert exported.parent is not None
    assert exported.parent.span_id == REMOTE_SPAN
    assert exported.parent.is_remote
    assert span.get_span_context().trace_flags.sampled


@pytest.mark.parametrize("flags", ["00", "02"])  # "02": the W3C random-trace-id flag
def test_an_unsampled_remote_parent_stays_unsampled(flags: str) -> None:
    rig = make_rig(ParentBased(ALWAYS_ON))
    headers = {"traceparent": traceparent(flags), "tracestate": "vendor=v1"}
    span = run_span(rig.tracer, "GET /", parent=extract(w3c_propagator(), headers))
    context = span.get_span_context()
    assert rig.exported() == ()
    assert not span.is_recording()
    assert context.trace_id == REMOTE_TRACE
    assert context.span_id not in (0, REMOTE_SPAN)
    assert not context.trace_flags.sampled
    assert propagated(span) == f"00-{REMOTE_TRACE:032x}-{context.span_id:016x}-{flags}"
    assert context.trace_state.get("vendor") == "v1"


# -- 4. processors and exporters see every recorded span ----------------------------------


async def test_processors_see_every_recorded_span_with_its_attributes() -> None:
    rig = make_rig(KeepSampler())

    async def work(ctx: Context, request: str) -> str:
        current_span(ctx).set_attribute("app.seen", request)
        if request == "down":
            raise Unavailable("db down")
        return request

    kept = call_tracing(rig.tracer, name="keep.op", attributes={"app.kind": "t"})(work)
    dropped = call_tracing(rig.tracer, name="drop.op", attributes={"app.kind": "t"})(work)
    for i in range(10):
        assert await kept(Context(), f"k{i}") == f"k{i}"
        assert await dropped(Context(), f"d{i}") == f"d{i}"
    with pytest.raises(Unavailable):
        await kept(Context(), "down")

    exported = rig.exported()
    assert rig.counts.started == rig.counts.ended == len(exported) == 11
    assert {span.name for span in exported} == {"keep.op"}
    seen = [span.attributes["app.seen"] for span in exported if span.attributes]
    assert seen == [f"k{i}" for i in range(10)] + ["down"]
    assert all(span.attributes and span.attributes["app.kind"] == "t" for span in exported)
    failed = exported[-1]
    assert failed.status.status_code is StatusCode.ERROR
    assert [event.name for event in failed.events] == ["exception"]  # kitpy's, not twice


def test_record_only_spans_reach_processors_but_not_the_exporter() -> None:
    record_only = CountingSampler(StaticSampler(Decision.RECORD_ONLY))
    rig = make_rig(record_only)
    spans = [
        span_starter(rig.tracer)(f"op {i}", NO_PARENT, SpanKind.SERVER, None) for i in range(5)
    ]
    assert all(span.is_recording() for span in spans)
    assert not any(span.get_span_context().trace_flags.sampled for span in spans)
    for span in spans:
        span.end()
    assert record_only.calls == 5
    assert rig.counts.started == rig.counts.ended == 5
    assert rig.exported() == ()  # SimpleSpanProcessor exports sampled spans only


# -- 5. W3C propagation of an unsampled request is the SDK's ------------------------------


def test_a_dropped_root_span_propagates_as_the_plain_sdks_does() -> None:
    sampler = ParentBased(TraceIdRatioBased(0.0))
    kitpy_span = run_span(make_rig(sampler).tracer, "GET /")
    sdk_span = make_rig(sampler, head=False).tracer.start_span("GET /", NO_PARENT)
    sdk_span.end()
    assert not kitpy_span.is_recording()
    assert not sdk_span.is_recording()

    kitpy_header = TRACEPARENT.fullmatch(propagated(kitpy_span))
    sdk_header = TRACEPARENT.fullmatch(propagated(sdk_span))
    assert kitpy_header is not None
    assert sdk_header is not None
    assert kitpy_header[3] == sdk_header[3]  # the same flags byte
    assert int(kitpy_header[3], 16) & 0x01 == 0  # sampled flag off
    assert (int(kitpy_header[1], 16), int(kitpy_header[2], 16)) == ids_of(kitpy_span)
    assert int(kitpy_header[1], 16) != 0
    assert int(kitpy_header[2], 16) != 0

    headers: CIMultiDict[str] = CIMultiDict()
    http_client_before()(with_span(Context(), kitpy_span), headers)
    assert headers["traceparent"] == kitpy_header[0]


def test_a_dropped_span_makes_its_span_context_once_and_only_when_asked() -> None:
    span = run_span(make_rig(ParentBased(TraceIdRatioBased(0.0))).tracer, "GET /")
    assert isinstance(span, DroppedSpan)
    assert isinstance(span, NonRecordingSpan)
    assert span._span_context is None  # ids only, until something needs the SpanContext
    context = span.get_span_context()
    assert span.get_span_context() is context
    assert (context.trace_id, context.span_id) == (span.trace_id, span.span_id)
    assert context.is_valid
    assert not context.is_remote
    assert not context.trace_flags.sampled
    assert repr(span) == f"DroppedSpan({context!r})"


def test_log_fields_of_a_dropped_span_are_its_ids_and_leave_its_span_context_unmade() -> None:
    span = run_span(make_rig(ParentBased(TraceIdRatioBased(0.0))).tracer, "GET /")
    assert isinstance(span, DroppedSpan)
    fields = log_fields(with_span(Context(), span))
    assert span._span_context is None
    same = NonRecordingSpan(span.get_span_context())  # what the SDK would have returned
    assert fields == log_fields(with_span(Context(), same))
    assert fields == {"trace_id": f"{span.trace_id:032x}", "span_id": f"{span.span_id:016x}"}


@pytest.mark.parametrize(("trace_id", "span_id"), [(0, 7), (7, 0), (2**128, 7), (7, 2**64)])
def test_log_fields_of_a_dropped_span_with_invalid_ids_are_empty(
    trace_id: int, span_id: int
) -> None:
    class Fixed(IdGenerator):  # a generator breaking its contract: log lines still render
        def generate_trace_id(self) -> int:
            return trace_id

        def generate_span_id(self) -> int:
            return span_id

    span = run_span(make_rig(ParentBased(TraceIdRatioBased(0.0)), ids=Fixed()).tracer, "GET /")
    assert isinstance(span, DroppedSpan)
    assert log_fields(with_span(Context(), span)) == {}
    assert not span.get_span_context().is_valid


def test_a_child_of_a_dropped_span_stays_in_its_trace_unsampled() -> None:
    sampler = CountingSampler(ParentBased(TraceIdRatioBased(0.0)))
    rig = make_rig(sampler)
    server_span = run_span(rig.tracer, "GET /")
    child = run_span(rig.tracer, "db", parent=otel_context(with_span(Context(), server_span)))
    assert ids_of(child)[0] == ids_of(server_span)[0]
    assert ids_of(child)[1] != ids_of(server_span)[1]
    assert not child.get_span_context().trace_flags.sampled
    assert sampler.calls == 2
    assert rig.exported() == ()


# -- 6. spans started by user code go through the SDK as usual ----------------------------


def test_user_spans_on_a_head_sampler_provider_follow_the_wrapped_sampler() -> None:
    ratio = TraceIdRatioBased(0.5)
    sampler = CountingSampler(ParentBased(ratio))
    rig = make_rig(sampler)
    user_tracer = rig.provider.get_tracer("user.code")
    kitpy_ids, user_spans = set(), []
    for _ in range(500):  # alternating, so a decision left behind would show
        kitpy_ids.add(ids_of(run_span(rig.tracer, "kitpy"))[0])
        span = user_tracer.start_span("user", NO_PARENT)
        span.end()
        user_spans.append(span)
    assert sampler.calls == 1000
    limit = TraceIdRatioBased.TRACE_ID_LIMIT
    recorded = {ids_of(span) for span in rig.exported() if span.name == "user"}
    assert 150 <= len(recorded) <= 350
    for span in user_spans:
        trace_id = ids_of(span)[0]
        assert trace_id not in kitpy_ids
        assert (ids_of(span) in recorded) == (trace_id & limit < ratio.bound)
        assert span.get_span_context().trace_flags.sampled == (ids_of(span) in recorded)


async def test_a_user_span_inside_a_traced_call_follows_its_parent() -> None:
    rig = make_rig(ParentBased(KeepSampler()))
    user_tracer = rig.provider.get_tracer("user.code")

    async def work(ctx: Context, request: str) -> str:
        user_tracer.start_span(f"{request}.db", otel_context(ctx)).end()
        return request

    await call_tracing(rig.tracer, name="keep.op")(work)(Context(), "keep")
    await call_tracing(rig.tracer, name="drop.op")(work)(Context(), "drop")
    by_name = {span.name: span for span in rig.exported()}
    assert sorted(by_name) == ["keep.db", "keep.op"]
    db, op = by_name["keep.db"], by_name["keep.op"]
    assert db.parent is not None
    assert op.context is not None
    assert db.parent.span_id == op.context.span_id


def test_head_sampler_ratio_decides_as_parent_based_trace_id_ratio() -> None:
    kitpy_rig = make_rig_for(HeadSampler.ratio(0.3, ids=SeededIds(7)))
    sdk_rig = make_rig(ParentBased(TraceIdRatioBased(0.3)), head=False, ids=SeededIds(7))
    baggage_only = extract(w3c_propagator(), {"baggage": "tenant=acme"})  # a root, not empty
    assert baggage_only
    parents = [NO_PARENT, baggage_only] + [
        extract(w3c_propagator(), {"traceparent": traceparent(flags)}) for flags in ["00", "01"]
    ]

    def outcomes(rig: Rig) -> list[tuple[int, bool, str]]:
        """(trace id, sampled, traceparent flags) of 800 spans: new roots and remote children."""
        found = []
        for i in range(800):
            span = run_span(rig.tracer, "GET /", parent=parents[i % 4])
            sampled = span.get_span_context().trace_flags.sampled
            found.append((ids_of(span)[0], sampled, propagated(span)[-2:]))
        return found

    kitpy_outcomes = outcomes(kitpy_rig)
    assert kitpy_outcomes == outcomes(sdk_rig)  # the same trace ids, decisions and flags
    roots = [outcome for i, outcome in enumerate(kitpy_outcomes) if i % 4 < 2]
    roots_sampled = sum(sampled for _, sampled, _ in roots)
    assert 80 <= roots_sampled <= 160  # ~0.3 of 400
    sampled = [trace_id for trace_id, sampled, _ in kitpy_outcomes if sampled]
    assert [ids_of(span)[0] for span in kitpy_rig.exported()] == sampled


def test_head_sampler_ratio_records_a_new_trace_as_the_sdk_would_without_asking(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    head = HeadSampler.ratio(0.5, ids=SeededIds(11))
    asked: list[int] = []
    ask = head.sampler.should_sample

    def counted(*args: object, **kwargs: object) -> SamplingResult:
        asked.append(1)
        return ask(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(head.sampler, "should_sample", counted)
    kitpy_rig = make_rig_for(head)
    sdk_rig = make_rig(ParentBased(TraceIdRatioBased(0.5)), head=False, ids=SeededIds(11))
    remote = extract(w3c_propagator(), {"traceparent": traceparent("01")})
    for rig in (kitpy_rig, sdk_rig):
        for i in range(60):
            attributes: Attributes = None if i % 3 == 0 else {"http.route": f"/r/{i}", "n": i}
            run_span(rig.tracer, f"op {i}", attributes=attributes)
    assert asked == []  # new traces, recorded or not, are decided by their trace id alone
    run_span(kitpy_rig.tracer, "child", parent=remote)
    assert asked == [1]  # a remote parent is the sampler's to decide

    def seen(rig: Rig) -> list[tuple[str, int, dict[str, object], str]]:
        return [
            (
                span.name,
                ids_of(span)[0],
                dict(span.attributes or {}),
                span.context.trace_state.to_header() if span.context else "?",
            )
            for span in rig.exported()
            if span.name != "child"
        ]

    recorded = seen(kitpy_rig)
    assert recorded == seen(sdk_rig)  # the same spans, attributes and (empty) trace state
    assert 15 <= len(recorded) <= 45
    assert any(attributes for _, _, attributes, _ in recorded)


# -- 7. span_starter falls back to the SDK when the provider is not wired for it ----------


def test_span_starter_without_a_head_sampler_uses_the_sdk() -> None:
    sampler = CountingSampler(KeepSampler())
    rig = make_rig(sampler, head=False)
    for name in ["keep 1", "drop 1", "keep 2", "drop 2"]:
        run_span(rig.tracer, name)
    assert sampler.calls == 4
    assert [span.name for span in rig.exported()] == ["keep 1", "keep 2"]
    assert rig.counts.started == rig.counts.ended == 2


def test_a_head_sampler_that_is_not_the_id_generator_leaves_starting_to_the_sdk() -> None:
    head_ids, provider_ids = 1 << 100, 1 << 64
    keep = KeepSampler()
    head = HeadSampler(keep, ids=SequentialIds(head_ids))
    rig = rig_of(
        TracerProvider(
            sampler=head, id_generator=SequentialIds(provider_ids), shutdown_on_exit=False
        )
    )
    spans = [run_span(rig.tracer, name) for name in ["keep 1", "drop 1"]]
    assert [ids_of(span)[0] for span in spans] == [provider_ids, provider_ids + 1]  # the SDK's
    assert keep.calls == 2
    assert [span.name for span in rig.exported()] == ["keep 1"]

    wired = make_rig(keep, ids=SequentialIds(head_ids))  # the same sampler, wired as both
    assert ids_of(run_span(wired.tracer, "keep 3"))[0] == head_ids
    assert ids_of(run_span(wired.tracer, "drop 3"))[0] == head_ids + 1


@pytest.mark.parametrize("head", [True, False], ids=["head", "sdk"])
def test_neither_path_lets_the_sdk_record_exceptions(head: bool) -> None:
    rig = make_rig(ALWAYS_ON, head=head)
    span = span_starter(rig.tracer)("op", NO_PARENT, SpanKind.INTERNAL, None)
    with pytest.raises(ValueError, match="own policy"), span:  # an SDK span records on exit
        raise ValueError("kitpy records errors by its own policy")
    (exported,) = rig.exported()
    assert exported.events == ()
    assert exported.status.status_code is StatusCode.UNSET


# -- 8. threads never get each other's decision or trace id -------------------------------


@pytest.fixture
def eager_thread_switching() -> Iterator[None]:
    """Switch threads as often as CPython will, so a handoff shared by threads would show."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


@pytest.mark.usefixtures("eager_thread_switching")
def test_concurrent_threads_each_get_their_own_decision_and_trace_id() -> None:
    sampler = KeepSampler()
    rig = make_rig(sampler)
    start = span_starter(rig.tracer)
    threads, per_thread = 4, 300
    barrier = threading.Barrier(threads)

    def run(thread: int) -> list[tuple[str, bool, bool, Span]]:
        barrier.wait(timeout=30)
        started = []
        for i in range(per_thread):
            request, keep = f"{thread}-{i}", i % 2 == 0
            span = start("work", NO_PARENT, SpanKind.SERVER, {"keep": keep, "req": request})
            started.append((request, keep, span.is_recording(), span))
            span.end()
        return started

    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(run, thread) for thread in range(threads)]
        results = [item for future in futures for item in future.result(timeout=60)]

    total = threads * per_thread
    assert len(results) == total
    assert sampler.calls == total
    assert all(recording == keep for _, keep, recording, _ in results)
    assert len({ids_of(span)[0] for *_, span in results}) == total
    for request, _, _, span in results:
        assert ids_of(span)[0] == sampler.trace_ids[request]  # the id it was decided on
    exported = rig.exported()
    assert len(exported) == rig.counts.started == rig.counts.ended == total // 2
    for recorded in exported:
        assert recorded.attributes is not None
        assert recorded.attributes["decided.for"] == recorded.attributes["req"]
        assert ids_of(recorded)[0] == sampler.trace_ids[str(recorded.attributes["req"])]


# -- 9. end to end over real sockets ------------------------------------------------------

TIMEOUT_S = 10

Call = Callable[[str | None], Awaitable[str]]
"""Send one request (with this ``traceparent``, or none); return the trace id it saw."""


async def seen_trace_id(ctx: Context, request: str) -> str:
    """The endpoint: answers with the trace id of its current span, in hex."""
    return f"{current_span(ctx).get_span_context().trace_id:032x}"


@dataclass(frozen=True)
class Echo:
    s: str


@asynccontextmanager
async def http_service(tracer: Tracer, endpoint: Endpoint[str, str]) -> AsyncIterator[Call]:
    """A kitpy HTTP Server on 127.0.0.1 port 0 with the tracing hooks around ``endpoint``."""

    async def echo(ctx: Context, request: Echo) -> Echo:
        return Echo(await endpoint(ctx, request.s))

    app = web.Application()
    khttp.add_routes(
        app,
        {
            "POST /echo": khttp.Server(
                echo,
                khttp.decode_json(Echo),
                khttp.encode_json,
                before=[http_server_before(tracer)],
                finalizer=[http_server_finalizer()],
            )
        },
    )
    running = await khttp.start_app(app, host="127.0.0.1", port=0)
    url = running.url / "echo"

    async def call(parent: str | None) -> str:
        headers = {} if parent is None else {"traceparent": parent}
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as session,
            session.post(url, json={"s": "hi"}, headers=headers) as resp,
        ):
            assert resp.status == 200
            body: dict[str, str] = await resp.json()
            return body["s"]

    try:
        yield call
    finally:
        await running.stop()


@asynccontextmanager
async def grpc_service(tracer: Tracer, endpoint: Endpoint[str, str]) -> AsyncIterator[Call]:
    """A kitpy gRPC Server on 127.0.0.1 port 0 with the tracing hooks around ``endpoint``."""
    async with serve_traced(tracer, endpoint) as target:

        async def call(parent: str | None) -> str:
            metadata = () if parent is None else (("traceparent", parent),)
            async with grpc.aio.insecure_channel(target) as channel:
                say: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]
                say = channel.unary_unary(FULL_METHOD)
                reply: bytes = await say(b"hi", metadata=metadata, timeout=TIMEOUT_S)
                return reply.decode()

        yield call


SERVICES = {"http": http_service, "grpc": grpc_service}


@pytest.mark.parametrize("transport", sorted(SERVICES))
async def test_a_served_request_is_recorded_only_when_its_trace_is(transport: str) -> None:
    sampler = CountingSampler(ParentBased(TraceIdRatioBased(0.0)))
    rig = make_rig(sampler)
    logs = io.StringIO()
    endpoint = call_logging(make_logger(stream=logs), name="say", fields=log_fields)(
        call_tracing(rig.tracer, name="say", join_server_span=True)(seen_trace_id)
    )
    async with asyncio.timeout(30), SERVICES[transport](rig.tracer, endpoint) as call:
        sampled = await call(traceparent("01"))
        unsampled = await call(traceparent("00"))
        untraced = await call(None)

    (server_span,) = rig.exported()  # the sampled request's SERVER span, nothing else
    assert server_span.kind is SpanKind.SERVER
    assert ids_of(server_span)[0] == REMOTE_TRACE
    assert server_span.parent is not None
    assert server_span.parent.span_id == REMOTE_SPAN
    assert server_span.attributes is not None
    assert server_span.attributes["kitpy.endpoint"] == "say"
    assert rig.counts.started == rig.counts.ended == 1
    assert sampler.calls == 3  # one span per request: the SERVER span the endpoint joins

    assert sampled == unsampled == f"{REMOTE_TRACE:032x}"
    assert re.fullmatch(r"[0-9a-f]{32}", untraced)
    assert untraced not in (sampled, "0" * 32)
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert [line["trace_id"] for line in lines] == [sampled, unsampled, untraced]
    assert all(re.fullmatch(r"[0-9a-f]{16}", line["span_id"]) for line in lines)
    assert lines[0]["span_id"] == f"{ids_of(server_span)[1]:016x}"
