"""Tracing with OpenTelemetry: a span per endpoint call and W3C propagation.

* :func:`call_tracing` -- a span per call; ERROR status on server faults only.
* :func:`stream_tracing` -- a span per stream of a stream endpoint, with its
  message counts.
* Transport hooks that continue a trace across processes (W3C Trace Context
  and baggage): :func:`http_server_before` / :func:`http_server_finalizer` /
  :func:`http_client_before` and :func:`grpc_server_before` /
  :func:`grpc_server_finalizer` / :func:`grpc_client_before`, and for the brokers
  (NATS, AMQP) :func:`message_server_before` / :func:`message_server_finalizer` /
  :func:`message_client_before`.
* :class:`HeadSampler` -- give it to your ``TracerProvider`` as sampler and id
  generator, and the hooks above decide head sampling before the SDK does any
  work: a request that is not recorded costs its ids, not an SDK span.
* Context helpers: :data:`SPAN`, :func:`current_span`, :func:`baggage`,
  :func:`with_baggage`, :func:`log_fields` (trace id for log lines).

The kitpy :class:`~kitpy.Context` is the only source of truth: nothing here
reads or sets the ambient OpenTelemetry context or the global tracer provider.
Pass a ``Tracer`` from a ``TracerProvider`` you built (its sampler decides head
sampling, e.g. ``ParentBased(TraceIdRatioBased(0.1))``; a sampled-out span
skips all attribute work here).
"""

from kitpy._extras import require

require("opentelemetry", extra="otel")

from kitpy.tracing.context import (
    OTEL_CONTEXT,
    SPAN,
    baggage,
    current_span,
    log_fields,
    otel_context,
    set_span_attributes,
    with_baggage,
    with_span,
)
from kitpy.tracing.grpc import (
    grpc_client_before,
    grpc_server_before,
    grpc_server_finalizer,
    rpc_attributes,
)
from kitpy.tracing.http import (
    http_client_before,
    http_server_before,
    http_server_finalizer,
)
from kitpy.tracing.messaging import (
    message_client_before,
    message_server_before,
    message_server_finalizer,
)
from kitpy.tracing.middleware import call_tracing, record_error
from kitpy.tracing.propagation import extract, inject, w3c_propagator
from kitpy.tracing.sampling import HeadSampler, span_starter
from kitpy.tracing.stream import stream_tracing

__all__ = [
    "HeadSampler",
    "OTEL_CONTEXT",
    "SPAN",
    "baggage",
    "current_span",
    "extract",
    "grpc_client_before",
    "grpc_server_before",
    "grpc_server_finalizer",
    "http_client_before",
    "http_server_before",
    "http_server_finalizer",
    "inject",
    "log_fields",
    "message_client_before",
    "message_server_before",
    "message_server_finalizer",
    "otel_context",
    "record_error",
    "rpc_attributes",
    "call_tracing",
    "set_span_attributes",
    "span_starter",
    "stream_tracing",
    "w3c_propagator",
    "with_baggage",
    "with_span",
]
