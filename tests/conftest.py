"""Shared fixtures: one session-scoped fixture per real server, started on 127.0.0.1.

Server fixtures for etcd, dnsmasq and prometheus are added by the tests that need
them, following ``redis_server`` below and the helpers in ``tests/servers.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import ServerProcess, free_port, require_binary, start_server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real redis-server on 127.0.0.1 (Debian package ``redis-server``); url via ``.port``."""
    binary = require_binary("redis-server", "redis-server")
    workdir: Path = tmp_path_factory.mktemp("redis")
    port = free_port()
    server = start_server(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        port=port,
        workdir=workdir,
        name="redis",
    )
    yield server
    server.stop()
