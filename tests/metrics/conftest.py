"""A real Prometheus server on loopback that scrapes a port the test will serve /metrics on."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.servers import ServerProcess, free_port, require_binary, start_server

SCRAPE_INTERVAL = "250ms"
READY_TIMEOUT = 30.0


def wait_until_ready(port: int, *, timeout: float = READY_TIMEOUT) -> None:
    """Wait until Prometheus on ``port`` says it is ready (``GET /-/ready`` is 200).

    It listens before its storage is open and answers queries 503 until then,
    so an open port is not enough.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass  # 503 (HTTPError is a URLError) or not accepting yet
        if time.monotonic() > deadline:
            raise TimeoutError(f"prometheus on port {port} was not ready within {timeout}s")
        time.sleep(0.1)


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
    try:
        wait_until_ready(port)
    except TimeoutError:
        server.stop()
        raise
    yield PrometheusServer(server, target_port)
    server.stop()
