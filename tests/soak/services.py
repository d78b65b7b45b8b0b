"""Run real stringsvc processes whose output goes to a file, and read it back.

A service under load writes a log line per request, so its stdout cannot be a
pipe that nobody drains (it would fill and stall the service, as
``examples/stringsvc/tests/running.py`` is fine with for a few calls).  Here
stdout and stderr go to a log file; the lines the service announces
(``stringsvc: HTTP listening on ...``, the shutdown steps) are read back from it.
Every wait is bounded; a process still running when its context exits is killed.

Example::

    async with running_service("up1", tmp_path, "--jwt-secret", secret) as up1:
        ...                                  # up1.http_addr, up1.grpc_addr
        assert await up1.stop() == 0
    print(up1.announced())
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ANNOUNCE", "Service", "rss_kib", "running_service", "start_service"]

ROOT = Path(__file__).resolve().parents[2]
ANNOUNCE = "stringsvc: "
"""The prefix of every line stringsvc announces (all other output is log lines and spans)."""


def rss_kib(pid: int) -> int:
    """The resident set size of process ``pid`` in KiB (``VmRSS`` of ``/proc/PID/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass
class Service:
    """One stringsvc process: where it listens and the file its output goes to."""

    name: str
    proc: asyncio.subprocess.Process
    log_path: Path
    http_addr: str = ""
    grpc_addr: str = ""

    @property
    def http_url(self) -> str:
        return f"http://{self.http_addr}"

    def lines(self) -> list[str]:
        """Every complete line written so far (log lines, spans, announcements)."""
        text = self.log_path.read_text(errors="replace")
        return text[: text.rfind("\n") + 1].splitlines()

    def announced(self) -> list[str]:
        """Just the announced lines, in order."""
        return [line for line in self.lines() if line.startswith(ANNOUNCE)]

    def rss_kib(self) -> int:
        """The process's resident set size now, in KiB."""
        return rss_kib(self.proc.pid)

    async def wait_for_line(self, prefix: str, *, within: float = 30.0) -> str:
        """Wait until a line starting with ``prefix`` has been written; return it."""
        async with asyncio.timeout(within):
            with self.log_path.open("rb") as log:
                pending = b""
                while True:
                    chunk = log.read()
                    if chunk:
                        *complete, pending = (pending + chunk).split(b"\n")
                        for raw in complete:
                            line = raw.decode(errors="replace")
                            if line.startswith(prefix):
                                return line
                    elif self.proc.returncode is not None:
                        raise RuntimeError(f"{self.name} exited; output:\n{self.tail()}")
                    else:
                        await asyncio.sleep(0.02)

    def tail(self, n: int = 40) -> str:
        """The last ``n`` lines of output, for failure messages."""
        return "\n".join(self.lines()[-n:])

    async def stop(self, sig: signal.Signals = signal.SIGTERM, *, within: float = 30.0) -> int:
        """Send ``sig`` (if still running) and return the exit code (bounded)."""
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        return await self.wait(within=within)

    async def wait(self, *, within: float = 30.0) -> int:
        """Wait for the process to exit (e.g. after a signal already sent); its exit code."""
        async with asyncio.timeout(within):
            return await self.proc.wait()


async def start_service(name: str, log_dir: Path, *args: str) -> Service:
    """Start ``python -m examples.stringsvc`` on free ports; return once both servers listen.

    Defaults put JSON logs in ``log_dir/NAME.log``, no spans printed and no
    shutdown drain; ``args`` come after them, so they can override any of it.
    """
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "examples.stringsvc",
            "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0",
            "--log-format", "json", "--no-print-spans", "--shutdown-drain", "0",
            *args,
            cwd=ROOT, stdin=asyncio.subprocess.DEVNULL,
            stdout=log, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    service = Service(name, proc, log_path)
    try:
        http = await service.wait_for_line(f"{ANNOUNCE}HTTP listening on http://")
        grpc = await service.wait_for_line(f"{ANNOUNCE}gRPC listening on ")
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    service.http_addr = http.rsplit("//", 1)[1]
    service.grpc_addr = grpc.rsplit(" ", 1)[1]
    return service


@contextlib.asynccontextmanager
async def running_service(name: str, log_dir: Path, *args: str) -> AsyncIterator[Service]:
    """:func:`start_service` as a context manager that kills the process if still running."""
    service = await start_service(name, log_dir, *args)
    try:
        yield service
    finally:
        if service.proc.returncode is None:
            service.proc.kill()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await service.proc.wait()
