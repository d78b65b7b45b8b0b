"""Head sampling before the SDK: a request that is not recorded costs its ids, not an SDK span.

OpenTelemetry's SDK builds a sampling decision, ``TraceFlags``, a ``SpanContext``
and its self-metrics for every span it is asked to start, recorded or not --
about 3 us a span here, and several times that in a loaded server, for the 90 %
of requests a ``ParentBased(TraceIdRatioBased(0.1))`` sampler drops.
:class:`HeadSampler` lets kitpy's tracing hooks ask your sampler first:

* a span the sampler drops becomes a ``NonRecordingSpan`` (a :class:`DroppedSpan`)
  carrying a fresh span id and the trace id the decision was made on (the
  caller's, or a new random one) -- what the SDK returns for it, without the
  SDK's work.  Its ids go to log lines and to W3C propagation (``traceparent``
  with the sampled flag off);
* a span the sampler records is started by the SDK as usual, on the trace id
  and with the very ``SamplingResult`` that decided it (the sampler is asked
  once): your processors, exporters, span limits, resource and attributes all
  apply unchanged.

Give the same object to the provider as its sampler and its id generator --
that is how the SDK receives the trace id and decision kitpy made::

    head = HeadSampler(ParentBased(TraceIdRatioBased(0.1)))
    provider = TracerProvider(sampler=head, id_generator=head)
    tracer = provider.get_tracer("stringsvc")
    before = http_server_before(tracer)          # samples first

Spans started on that provider by anything else (your own code, other
instrumentation) go through the SDK exactly as with the wrapped sampler alone.
A tracer from a provider without a ``HeadSampler`` still works with every kitpy
hook: the SDK then decides (:func:`span_starter`).

What the fast path leaves out for dropped spans: the SDK's own span-count
self-metrics (``otel.sdk.span.*``, only kept when the provider has a meter
provider) and the experimental per-tracer enable switch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from functools import partial

from opentelemetry import trace
from opentelemetry.context import Context as OtelContext
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

__all__ = ["DroppedSpan", "HeadSampler", "StartSpan", "span_starter"]

StartSpan = Callable[[str, OtelContext, SpanKind, Attributes], Span]
"""Start a span: ``(name, parent context, kind, attributes) -> Span``."""

_RANDOM_BIT = int(getattr(TraceFlags, "RANDOM_TRACE_ID", 0))  # W3C level 2; SDK >= 1.39
_TRACE_ID_LIMIT = TraceIdRatioBased.TRACE_ID_LIMIT
_RECORDED = frozenset({Decision.RECORD_ONLY, Decision.RECORD_AND_SAMPLE})
_DROPPED = TraceFlags(TraceFlags.DEFAULT)
_DROPPED_RANDOM = TraceFlags(TraceFlags.DEFAULT | _RANDOM_BIT)
_NO_PARENT = trace.INVALID_SPAN_CONTEXT


_ROOT_RECORDED = SamplingResult(Decision.RECORD_AND_SAMPLE)


def _recorded_root(attributes: Attributes) -> SamplingResult:
    """``TraceIdRatioBased``'s result for a new trace it records: no trace state."""
    if attributes is None:
        return _ROOT_RECORDED  # the SDK only reads it: one will do for every span
    return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)


class DroppedSpan(NonRecordingSpan):
    """The span :class:`HeadSampler` gives a dropped decision: ids only, sampled flag off.

    A ``NonRecordingSpan`` in every way OpenTelemetry sees; its ``SpanContext``
    is made only when first asked for (a ``traceparent`` to send, a child
    span), since most dropped requests need no more than their two ids, which
    it keeps as plain attributes for log lines (:func:`~kitpy.tracing.log_fields`
    reads them): building the ``SpanContext`` costs more than the rest of the
    span.  Made by :class:`HeadSampler` only.
    """

    __slots__ = ("_flags", "_span_context", "_trace_state", "span_id", "trace_id")

    def __init__(
        self, trace_id: int, span_id: int, flags: TraceFlags, trace_state: TraceState | None
    ) -> None:
        # NonRecordingSpan's own constructor would build the SpanContext now
        self.trace_id = trace_id
        self.span_id = span_id
        self._flags = flags
        self._trace_state = trace_state
        self._span_context: SpanContext | None = None

    def get_span_context(self) -> SpanContext:
        """The span's ``SpanContext`` (made on the first call)."""
        context = self._span_context
        if context is None:
            context = SpanContext(
                self.trace_id, self.span_id, False, self._flags, self._trace_state
            )
            self._span_context = context
        return context

    def __repr__(self) -> str:
        return f"DroppedSpan({self.get_span_context()!r})"


class HeadSampler(Sampler, IdGenerator):
    """A sampler and id generator that lets kitpy decide head sampling before the SDK.

    ``sampler`` is the decision you want (e.g. ``ParentBased(TraceIdRatioBased(0.1))``);
    ``ids`` generates trace and span ids (default: the SDK's random ones).  Pass
    the object to ``TracerProvider`` as both ``sampler`` and ``id_generator``.

    Example::

        head = HeadSampler(ParentBased(TraceIdRatioBased(0.1)))
        provider = TracerProvider(sampler=head, id_generator=head)
    """

    def __init__(self, sampler: Sampler, *, ids: IdGenerator | None = None) -> None:
        self._sampler = sampler
        self._ids = ids if ids is not None else RandomIdGenerator()
        self._random_ids = bool(getattr(self._ids, "is_trace_id_random", lambda: False)())
        self._handoff = threading.local()  # the trace id and decision kitpy hands the SDK
        self._root_bound: int | None = None  # see ratio()

    @property
    def sampler(self) -> Sampler:
        """The sampler that decides (fixed: :meth:`ratio` relies on it)."""
        return self._sampler

    @property
    def ids(self) -> IdGenerator:
        """The generator of new trace and span ids."""
        return self._ids

    @classmethod
    def ratio(cls, ratio: float, *, ids: IdGenerator | None = None) -> HeadSampler:
        """``HeadSampler(ParentBased(TraceIdRatioBased(ratio)))``, with roots decided inline.

        The usual head-sampling policy: continue the caller's decision, and
        record the given fraction of new traces, chosen by trace id.  Since this
        object built the sampler, it decides a root span without calling it:
        dropped when its trace id is over the ratio's bound, else recorded with
        the span's attributes and no trace state -- the answers
        ``TraceIdRatioBased`` gives, without the ~16 k instructions of asking
        ``ParentBased``.  Every other span asks the sampler.

        Example::

            head = HeadSampler.ratio(0.1)
            provider = TracerProvider(sampler=head, id_generator=head)
        """
        root = TraceIdRatioBased(ratio)
        head = cls(ParentBased(root), ids=ids)
        head._root_bound = root.bound
        return head

    # -- the Sampler and IdGenerator the SDK calls -----------------------------------------

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
        """The decision :meth:`start_span` made for this trace id, else the wrapped sampler's."""
        decided: tuple[int, SamplingResult] | None = getattr(self._handoff, "decided", None)
        if decided is not None and decided[0] == trace_id:
            self._handoff.decided = None
            return decided[1]
        return self._sampler.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        """``HeadSampler{<the wrapped sampler's description>}``."""
        return f"HeadSampler{{{self._sampler.get_description()}}}"

    def generate_trace_id(self) -> int:
        """The trace id :meth:`start_span` decided on, else a new one."""
        trace_id: int | None = getattr(self._handoff, "trace_id", None)
        if trace_id is not None:
            self._handoff.trace_id = None
            return trace_id
        return self._ids.generate_trace_id()

    def generate_span_id(self) -> int:
        """A new span id."""
        return self._ids.generate_span_id()

    def is_trace_id_random(self) -> bool:
        """Whether new trace ids are random (the W3C ``random-trace-id`` flag)."""
        return self._random_ids

    # -- what kitpy's hooks call -------------------------------------------------------------

    def start_span(
        self,
        tracer: trace.Tracer,
        name: str,
        context: OtelContext,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
    ) -> Span:
        """Start a span on ``tracer`` (of a provider given this object), deciding first.

        A dropped span is a ``NonRecordingSpan`` with fresh ids; a recorded one
        is the SDK's, started with the trace id and decision made here.
        """
        # an empty context (no remote parent, no baggage: most requests) holds no span to look up
        parent = trace.get_current_span(context).get_span_context() if context else _NO_PARENT
        continued = parent is not _NO_PARENT and parent.is_valid
        result: SamplingResult | None = None
        if continued:
            trace_id = parent.trace_id
            random_id = bool(parent.trace_flags & _RANDOM_BIT)
        else:
            trace_id = self._ids.generate_trace_id()
            random_id = self._random_ids
            bound = self._root_bound
            if bound is not None:  # see ratio(): a new trace is decided here, by its id
                if trace_id & _TRACE_ID_LIMIT >= bound:
                    return self._dropped(trace_id, random_id, None)
                result = _recorded_root(attributes)
        if result is None:
            result = self._sampler.should_sample(context, trace_id, name, kind, attributes, ())
            if result.decision not in _RECORDED:
                return self._dropped(trace_id, random_id, result.trace_state)
        handoff = self._handoff
        handoff.decided = (trace_id, result)
        handoff.trace_id = None if continued else trace_id
        try:
            return tracer.start_span(
                name,
                context,
                kind,
                attributes,
                record_exception=False,
                set_status_on_exception=False,
            )
        finally:
            handoff.decided = handoff.trace_id = None

    def _dropped(self, trace_id: int, random_id: bool, trace_state: TraceState | None) -> Span:
        """The span the SDK returns for a dropped decision: ids only, sampled flag off."""
        flags = _DROPPED_RANDOM if random_id else _DROPPED
        return DroppedSpan(trace_id, self._ids.generate_span_id(), flags, trace_state)


def span_starter(tracer: trace.Tracer) -> StartSpan:
    """How kitpy's hooks start spans on ``tracer``: sampling first when its provider allows.

    With a provider whose sampler and id generator are one :class:`HeadSampler`,
    spans are started by :meth:`HeadSampler.start_span`; otherwise by
    ``tracer.start_span``.  Either way exceptions are not recorded by the SDK
    (kitpy records them by its status policy).
    """
    sampler: object = getattr(tracer, "sampler", None)
    gives_ids = getattr(tracer, "id_generator", None) is sampler
    if gives_ids and isinstance(sampler, HeadSampler):
        return partial(sampler.start_span, tracer)  # a C-level call: no frame of its own
    start = tracer.start_span

    def start_span(name: str, context: OtelContext, kind: SpanKind, attributes: Attributes) -> Span:
        # every argument by position, in the order of the API's Tracer.start_span (links,
        # start_time, record_exception, set_status_on_exception): keywords merged by a
        # partial cost ~150 ns more a span than this frame
        return start(name, context, kind, attributes, None, None, False, False)

    return start_span
