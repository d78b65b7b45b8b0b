"""kitpy.log exports exactly its public names."""

from __future__ import annotations

import kitpy.log


def test_public_names() -> None:
    assert set(kitpy.log.__all__) == {
        "Fields",
        "Logger",
        "ServerErrorLog",
        "StdlibBridge",
        "call_logging",
        "make_logger",
        "server_error_logging",
        "stream_logging",
    }
    for name in kitpy.log.__all__:
        assert hasattr(kitpy.log, name)
