"""bench/grpc_ab.py's plan: which servers it starts and in what order it loads them."""

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


def test_bursts_go_forward_and_back_and_rounds_alternate() -> None:
    names = ["raw", "kitpy", "base"]
    first = [grpc_ab.order(names, 0, burst) for burst in range(grpc_ab.BURSTS)]
    second = [grpc_ab.order(names, 1, burst) for burst in range(grpc_ab.BURSTS)]
    assert first == [names, names[::-1], names, names[::-1]]
    assert second == [names[::-1], names, names[::-1], names]
    # over a round every variant is loaded as often
    loads = [name for burst in first for name in burst]
    assert {name: loads.count(name) for name in names} == dict.fromkeys(names, grpc_ab.BURSTS)
