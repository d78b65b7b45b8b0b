"""Shared fixtures: one session-scoped fixture per real server, started on 127.0.0.1.

Fixtures used by one test package live in its own conftest (dnsmasq in
``tests/sd``, prometheus in ``tests/metrics``); those several packages share are here
(``redis_server``, ``etcd_server``, ``nats_server``, ``rabbitmq_server``), built on
the helpers in ``tests/servers.py``.
"""

from __future__ import annotations

import os
import signal
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


@dataclass
class RabbitMQ:
    """A running rabbitmq-server: ``url`` for clients (user guest, vhost /)."""

    server: ServerProcess

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.server.port}/"

    def stop(self) -> None:
        """Stop the broker: the start script and the Erlang VM it runs (one process group)."""
        proc = self.server.proc
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)

    def start(self) -> None:
        """Start it again on the same port and data directory (durable queues survive)."""
        self.server.start(timeout=60)


@pytest.fixture(scope="session")
def rabbitmq_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQ]:
    """A real RabbitMQ (Debian package ``rabbitmq-server``) on 127.0.0.1, in its own directory.

    Runs the package's ``/usr/lib/rabbitmq/bin/rabbitmq-server`` directly: the
    ``/usr/sbin`` wrapper switches to the rabbitmq user, who cannot write here.
    """
    require_binary("rabbitmq-server", "rabbitmq-server", "/usr/sbin")
    binary = "/usr/lib/rabbitmq/bin/rabbitmq-server"
    workdir: Path = tmp_path_factory.mktemp("rabbitmq")
    port, dist = free_port(), free_port()
    (workdir / "rabbitmq.conf").write_text(
        f"listeners.tcp.1 = 127.0.0.1:{port}\nloopback_users = none\n"
    )
    (workdir / "enabled_plugins").write_text("[].\n")
    env = {
        "RABBITMQ_NODENAME": f"kitpy{port}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist),
        "RABBITMQ_CONFIG_FILE": str(workdir / "rabbitmq"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(workdir / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(workdir / "mnesia"),
        "RABBITMQ_LOG_BASE": str(workdir / "log"),
        "RABBITMQ_FEATURE_FLAGS_FILE": str(workdir / "feature_flags"),
        "RABBITMQ_PID_FILE": str(workdir / "rabbitmq.pid"),
        "RABBITMQ_PLUGINS_EXPAND_DIR": str(workdir / "plugins-expand"),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "HOME": str(workdir),
    }
    server = start_server(
        [binary], port=port, workdir=workdir, name="rabbitmq", env=env, timeout=60
    )
    broker = RabbitMQ(server)
    yield broker
    broker.stop()
