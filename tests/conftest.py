"""Shared fixtures: one session-scoped fixture per real server, started on 127.0.0.1.

Fixtures used by one test package live in its own conftest (dnsmasq in
``tests/sd``, prometheus in ``tests/metrics``); those several packages share are here
(``redis_server``, ``etcd_server``, ``nats_server``), built on the helpers in ``tests/servers.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
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


@dataclass
class Etcd:
    """A running etcd: ``url`` for clients; ``server.stop(kill=True)`` / ``server.start()``
    restart it on the same ports and data directory."""

    server: ServerProcess

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Etcd]:
    """A real etcd (Debian package ``etcd-server``) on 127.0.0.1."""
    binary = require_binary("etcd", "etcd-server")
    workdir: Path = tmp_path_factory.mktemp("etcd")
    port, peer = free_port(), free_port()
    server = start_server(
        [
            binary,
            "--name=kitpy-test",
            f"--data-dir={workdir / 'data'}",
            f"--listen-client-urls=http://127.0.0.1:{port}",
            f"--advertise-client-urls=http://127.0.0.1:{port}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=kitpy-test=http://127.0.0.1:{peer}",
        ],
        port=port,
        workdir=workdir,
        name="etcd",
    )
    yield Etcd(server)
    server.stop()


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nats]:
    """A real nats-server with JetStream (Debian package ``nats-server``) on 127.0.0.1."""
    binary = require_binary("nats-server", "nats-server", "/usr/sbin")
    workdir: Path = tmp_path_factory.mktemp("nats")
    port = free_port()
    argv = [binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(workdir / "js")]
    server = start_server(argv, port=port, workdir=workdir, name="nats")
    yield Nats(server)
    server.stop()


@dataclass
class Nats:
    """A running nats-server: ``url`` for clients; ``server.stop()`` / ``server.start()``."""

    server: ServerProcess

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.server.port}"
