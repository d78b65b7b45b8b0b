"""An in-memory OpenTelemetry tracer provider with span assertions.

:class:`SpanRecorder` builds a ``TracerProvider`` whose spans go to the SDK's
``InMemorySpanExporter`` through a ``SimpleSpanProcessor`` (exported as soon as
they end).  It never becomes the global provider: pass ``recorder.tracer``
(or ``recorder.provider``) to the code under test.
"""

from __future__ import annotations

from kitpy._extras import require

require("opentelemetry.sdk", extra="otel")

import itertools
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.sdk.trace.sampling import Sampler
from opentelemetry.trace import Tracer

__all__ = ["SpanRecorder"]


class SpanRecorder:
    """Finished spans in memory, with lookups and parent/child assertions.

    Example::

        spans = SpanRecorder()
        endpoint = call_tracing(spans.tracer)(make_uppercase_endpoint(svc))
        await endpoint(Context(), UppercaseRequest("hi"))
        span = spans.one("uppercase")
        assert span.status.is_ok
    """

    def __init__(self, *, sampler: Sampler | None = None) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(sampler=sampler)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer: Tracer = self.provider.get_tracer("kitpy.testing")

    @property
    def spans(self) -> tuple[ReadableSpan, ...]:
        """Every finished span, in the order they ended."""
        return self.exporter.get_finished_spans()

    def named(self, name: str) -> list[ReadableSpan]:
        """The finished spans called ``name``."""
        return [span for span in self.spans if span.name == name]

    def one(self, name: str) -> ReadableSpan:
        """The single finished span called ``name`` (AssertionError if not exactly one)."""
        found = self.named(name)
        if len(found) != 1:
            names = [span.name for span in self.spans]
            raise AssertionError(f"expected one span {name!r}, found {len(found)}; spans: {names}")
        return found[0]

    def assert_child_of(self, child: ReadableSpan, parent: ReadableSpan) -> None:
        """Assert ``child``'s parent is ``parent`` and both belong to one trace."""
        if child.context is None or parent.context is None:
            raise AssertionError("both spans must have a span context")
        if child.parent is None or child.parent.span_id != parent.context.span_id:
            raise AssertionError(f"span {child.name!r} is not a child of {parent.name!r}")
        if child.context.trace_id != parent.context.trace_id:
            raise AssertionError(f"{child.name!r} and {parent.name!r} are in different traces")

    def assert_chain(self, names: Sequence[str]) -> list[ReadableSpan]:
        """Assert the spans ``names`` (one each) form a parent -> child chain in one trace."""
        spans = [self.one(name) for name in names]
        for parent, child in itertools.pairwise(spans):
            self.assert_child_of(child, parent)
        return spans

    def trace_ids(self) -> set[int]:
        """The distinct trace ids among the finished spans."""
        return {span.context.trace_id for span in self.spans if span.context is not None}

    def clear(self) -> None:
        """Forget every finished span."""
        self.exporter.clear()

    def shutdown(self) -> None:
        """Shut the provider down (flushes and stops its processor)."""
        self.provider.shutdown()
