"""The public names of kitpy.transport.grpc, exactly."""

from __future__ import annotations

import kitpy.transport.grpc as kgrpc


def test_request_id_lives_in_the_core_only() -> None:
    import kitpy.transport.http as khttp

    assert not hasattr(kgrpc, "REQUEST_ID")
    assert not hasattr(khttp, "REQUEST_ID")


def test_core_import_does_not_pull_in_grpc() -> None:
    import subprocess
    import sys

    code = "import sys, kitpy, kitpy.transport; print('grpc' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
