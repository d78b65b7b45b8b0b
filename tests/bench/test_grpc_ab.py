"""bench/grpc_ab.py's plan: which servers it starts (the burst order is report.py's)."""

from __future__ import annotations

import sys
from pathlib import Path

from bench import grpc_ab


def test_the_base_is_served_by_its_own_checkouts_script() -> None:
    commands = grpc_ab.commands(Path("/tmp/kitpy-base"))
    here = str(grpc_ab.ROOT / "bench" / "grpc_server.py")
    assert commands == {
        "raw": [sys.executable, here, "--serve", "raw"],
        "kitpy": [sys.executable, here, "--serve", "kitpy"],
        "base": [sys.executable, "/tmp/kitpy-base/bench/grpc_server.py", "--serve", "kitpy"],
    }
