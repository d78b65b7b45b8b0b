"""Real dnsmasq on 127.0.0.1 for the service discovery tests (etcd is in tests/conftest.py).

The dnsmasq fixture can be restarted with new records, since dnsmasq reads
``--srv-host`` only at start-up.  ``Etcd`` is re-exported for the etcd tests here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Etcd as Etcd  # the session fixture etcd_server is shared
from tests.servers import ServerProcess, free_port, require_binary, start_server


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
