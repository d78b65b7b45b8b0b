"""Real etcd and dnsmasq servers on 127.0.0.1 for the service discovery tests.

One session-scoped fixture per server.  The etcd fixture can be killed and
restarted in place (same ports, same data directory) for the recovery test;
the dnsmasq fixture can be restarted with new records, since dnsmasq reads
``--srv-host`` only at start-up.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import ServerProcess, free_port, require_binary, start_server


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


@dataclass
class Dnsmasq:
    """A running dnsmasq answering for the ``svc.test`` zone on 127.0.0.1:``port``."""

    server: ServerProcess
    binary: str

    @property
    def port(self) -> int:
        return self.server.port

    def serve(self, srv: Sequence[str], hosts: Sequence[str] = ()) -> None:
        """Restart serving these ``--srv-host`` and ``--host-record`` values."""
        self.server.stop()
        self.server.argv = _dnsmasq_argv(self.binary, self.port, srv, hosts)
        self.server.start()


def _dnsmasq_argv(binary: str, port: int, srv: Sequence[str], hosts: Sequence[str]) -> list[str]:
    return [
        binary,
        "--no-daemon",
        f"--port={port}",
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--no-resolv",
        "--no-hosts",
        "--conf-file=/dev/null",
        "--local=/svc.test/",  # authoritative for the zone: unknown names get NXDOMAIN
        *(f"--srv-host={record}" for record in srv),
        *(f"--host-record={record}" for record in hosts),
    ]


@pytest.fixture(scope="session")
def dnsmasq_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dnsmasq]:
    """A real dnsmasq (Debian package ``dnsmasq``) on a loopback port; records via ``serve``."""
    binary = require_binary("dnsmasq", "dnsmasq", "/usr/sbin", "/sbin")
    workdir: Path = tmp_path_factory.mktemp("dnsmasq")
    port = free_port()
    argv = _dnsmasq_argv(binary, port, (), ())
    server = start_server(argv, port=port, workdir=workdir, name="dnsmasq")
    yield Dnsmasq(server, binary)
    server.stop()
