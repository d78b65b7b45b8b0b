"""W3C Trace Context + baggage propagation between the kitpy Context and a carrier.

:func:`inject` writes ``traceparent`` / ``tracestate`` / ``baggage`` for the
Context's current span into outgoing headers or metadata; :func:`extract` reads
them from incoming ones into an OpenTelemetry Context.  Both always pass an
explicit OTel Context, so the ambient one is neither read nor changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping

from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context as OtelContext
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import Getter, Setter, TextMapPropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from kitpy.context import Context
from kitpy.tracing.context import EMPTY, OTEL_CONTEXT, SPAN, otel_context

__all__ = ["Carrier", "extract", "extractor", "inject", "w3c_propagator"]

Carrier = MutableMapping[str, str] | MutableMapping[str, str | bytes]
"""Outgoing HTTP headers or gRPC metadata."""


def w3c_propagator() -> TextMapPropagator:
    """A propagator for W3C Trace Context (``traceparent``, ``tracestate``) and W3C baggage."""
    return CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])


class _TextGetter(Getter[Mapping[str, str | bytes]]):
    """Reads text values from headers or gRPC metadata; binary (``-bin``) values are skipped."""

    def get(self, carrier: Mapping[str, str | bytes], key: str) -> list[str] | None:
        value = carrier.get(key)
        return [value] if isinstance(value, str) else None

    def keys(self, carrier: Mapping[str, str | bytes]) -> list[str]:
        return list(carrier.keys())


class _TextSetter(Setter[Carrier]):
    def set(self, carrier: Carrier, key: str, value: str) -> None:
        carrier[key] = value


_GETTER = _TextGetter()
_SETTER = _TextSetter()


def inject(propagator: TextMapPropagator, ctx: Context, carrier: Carrier) -> None:
    """Write the trace context and baggage of ``ctx`` into ``carrier`` (nothing if it has none)."""
    if SPAN in ctx or OTEL_CONTEXT in ctx:
        propagator.inject(carrier, otel_context(ctx), _SETTER)


def extract(propagator: TextMapPropagator, carrier: Mapping[str, str | bytes]) -> OtelContext:
    """The remote parent span and baggage found in ``carrier``, as an OTel Context."""
    return propagator.extract(carrier, EMPTY, _GETTER)


def extractor(
    propagator: TextMapPropagator | None,
) -> Callable[[Mapping[str, str | bytes]], OtelContext]:
    """A function doing :func:`extract` with ``propagator`` (None: the W3C one).

    With the default W3C propagator, a carrier with neither ``traceparent``
    nor ``baggage`` yields the empty Context without calling the propagator
    (a ``tracestate`` alone is ignored by W3C propagation anyway) -- the
    common case of a request from an untraced caller costs two lookups.  A
    propagator you pass is always called, since it may read keys it does not
    list in ``fields``.
    """
    if propagator is not None:
        return lambda carrier: propagator.extract(carrier, EMPTY, _GETTER)
    prop = w3c_propagator()
    # a tracestate alone carries nothing: the W3C propagator reads it only with a traceparent
    fields = tuple(sorted(prop.fields - {"tracestate"}))
    prop_extract = prop.extract

    def extract_w3c(carrier: Mapping[str, str | bytes]) -> OtelContext:
        for name in fields:
            if name in carrier:
                return prop_extract(carrier, EMPTY, _GETTER)
        return EMPTY

    return extract_w3c
