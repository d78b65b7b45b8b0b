"""kitpy.tracing exports exactly its public names."""

from __future__ import annotations

import kitpy.tracing


def test_public_names() -> None:
    assert set(kitpy.tracing.__all__) == {
        "OTEL_CONTEXT", "SPAN", "baggage", "current_span", "extract", "grpc_client_before",
        "grpc_server_before", "grpc_server_finalizer", "http_client_before", "http_server_before",
        "http_server_finalizer", "inject", "log_fields", "message_client_before",
        "message_server_before", "message_server_finalizer", "otel_context", "record_error",
        "rpc_attributes", "call_tracing", "stream_tracing", "w3c_propagator", "with_baggage",
        "with_span", "HeadSampler", "span_starter", "set_span_attributes",
    }  # fmt: skip
    for name in kitpy.tracing.__all__:
        assert hasattr(kitpy.tracing, name)
