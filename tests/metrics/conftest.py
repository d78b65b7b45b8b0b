"""A real Prometheus server on loopback that scrapes a port the test will serve /metrics on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.servers import ServerProcess, free_port, require_binary, start_server

SCRAPE_INTERVAL = "250ms"


@dataclass(frozen=True)
class PrometheusServer:
    """The running server and the loopback port it scrapes ``/metrics`` from."""

    process: ServerProcess
    target_port: int

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.process.port}/api/v1"


@pytest.fixture(scope="session")
def prometheus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A real ``prometheus`` (Debian package ``prometheus``) scraping 127.0.0.1:``target_port``."""
    binary = require_binary("prometheus", "prometheus")
    workdir = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    target_port = free_port()
    config = workdir / "prometheus.yml"
    config.write_text(
        "global:\n"
        f"  scrape_interval: {SCRAPE_INTERVAL}\n"
        f"  scrape_timeout: {SCRAPE_INTERVAL}\n"
        "scrape_configs:\n"
        "  - job_name: kitpy\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{target_port}']\n"
    )
    server = start_server(
        [
            binary,
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.path={workdir / 'data'}",
            "--storage.tsdb.retention.time=1h",
        ],
        port=port,
        workdir=workdir,
        name="prometheus",
    )
    yield PrometheusServer(server, target_port)
    server.stop()
