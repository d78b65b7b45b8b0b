"""The public names of kitpy.transport.grpc, exactly."""

from __future__ import annotations

import kitpy.transport.grpc as kgrpc


def test_exported_names() -> None:
    assert sorted(kgrpc.__all__) == sorted(
        [
            "METADATA",
            "METHOD",
            "PEER",
            "REQUEST_ID",
            "Client",
            "ClientAfter",
            "ClientBefore",
            "ClientFinalizer",
            "ErrorEncoder",
            "ErrorHandler",
            "GrpcServer",
            "Metadata",
            "MutableMetadata",
            "OutgoingMetadata",
            "Server",
            "ServerAfter",
            "ServerBefore",
            "ServerFinalizer",
            "code_from_grpc_status",
            "context_to_metadata",
            "context_to_response_metadata",
            "default_error_encoder",
            "error_from_rpc_error",
            "grpc_status",
            "metadata_from_pairs",
            "metadata_to_context",
            "metadata_to_pairs",
            "response_metadata_to_context",
            "set_response_metadata",
        ]
    )
    for name in kgrpc.__all__:
        assert getattr(kgrpc, name) is not None


def test_request_id_is_the_key_every_transport_shares() -> None:
    import kitpy.context

    assert kgrpc.REQUEST_ID is kitpy.context.REQUEST_ID


def test_core_import_does_not_pull_in_grpc() -> None:
    import subprocess
    import sys

    code = "import sys, kitpy, kitpy.transport; print('grpc' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
