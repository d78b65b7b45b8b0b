"""Start real servers (redis, etcd, dnsmasq, prometheus, nats, rabbitmq) on loopback for tests.

Each server gets one session-scoped fixture in ``tests/conftest.py`` built on
these helpers.  Where a binary is missing the fixture skips with a message
naming the Debian package -- unless ``KITPY_REQUIRE_SERVERS=1`` (set by
``.ci/run`` after installing the packages), where a missing binary fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

__all__ = ["ServerProcess", "free_port", "require_binary", "start_server", "wait_for_port"]


def require_binary(binary: str, package: str, *extra_dirs: str) -> str:
    """Return the path of ``binary``, or skip (fail under KITPY_REQUIRE_SERVERS=1)."""
    path = shutil.which(binary, path=os.pathsep.join([os.environ.get("PATH", ""), *extra_dirs]))
    if path is None:
        message = f"{binary} not found: install the Debian package '{package}'"
        if os.environ.get("KITPY_REQUIRE_SERVERS") == "1":
            pytest.fail(message + " -- KITPY_REQUIRE_SERVERS=1 requires it", pytrace=False)
        pytest.skip(message)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(
    port: int, *, timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout}s")


@dataclass
class ServerProcess:
    """A server started by a test: its process, port, and scratch directory."""

    argv: list[str]
    port: int
    workdir: Path
    log_path: Path
    env: dict[str, str] | None = None
    """Extra environment variables for the server (added to this process's)."""
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, *, wait_port: int | None = None, timeout: float = 20.0) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **self.env} if self.env else None,
        )
        log.close()
        try:
            wait_for_port(wait_port or self.port, timeout=timeout, proc=self.proc)
        except Exception:
            self.stop()
            raise RuntimeError(f"{self.argv[0]} failed to start:\n{self.log()}") from None

    def stop(self, *, kill: bool = False, timeout: float = 10.0) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        if kill:
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)

    def restart(self, *, timeout: float = 20.0) -> None:
        self.stop()
        self.start(timeout=timeout)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


def start_server(
    argv: Sequence[str],
    *,
    port: int,
    workdir: Path,
    name: str,
    wait_port: int | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 20.0,
) -> ServerProcess:
    """Start ``argv`` in ``workdir``; wait until it listens on ``wait_port`` (default ``port``)."""
    server = ServerProcess(list(argv), port, workdir, workdir / f"{name}.log", env=env)
    server.start(wait_port=wait_port, timeout=timeout)
    return server
