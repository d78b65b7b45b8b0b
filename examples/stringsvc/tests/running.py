"""Start ``python -m examples.stringsvc`` as a real process and read where it listens.

Used by the tests that exercise the wired-up service (auth, metrics, proxying,
shutdown).  Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["RunningService", "running_service"]

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class RunningService:
    """A stringsvc process: its HTTP and gRPC addresses and what it printed."""

    proc: asyncio.subprocess.Process
    http_addr: str = ""
    grpc_addr: str = ""
    lines: list[str] = field(default_factory=list)

    @property
    def http_url(self) -> str:
        return f"http://{self.http_addr}"

    async def stop(self, sig: signal.Signals = signal.SIGTERM, *, within: float = 30) -> int:
        """Send ``sig``, collect the rest of the output, return the exit code (bounded)."""
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        assert self.proc.stdout is not None
        async with asyncio.timeout(within):
            rest = (await self.proc.stdout.read()).decode()
            self.lines.extend(rest.splitlines())
            return await self.proc.wait()


@contextlib.asynccontextmanager
async def running_service(*args: str, extra: Sequence[str] = ()) -> AsyncIterator[RunningService]:
    """Run stringsvc on free ports with ``args``; yield once both servers listen."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "examples.stringsvc",
        "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0",
        "--log-format", "json", "--print-spans", "false", "--shutdown-drain", "0",
        *args, *extra,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    service = RunningService(proc)
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(30):
            while not (service.http_addr and service.grpc_addr):
                raw = await proc.stdout.readline()
                if not raw:
                    raise RuntimeError("stringsvc exited early:\n" + "\n".join(service.lines))
                line = raw.decode().rstrip()
                service.lines.append(line)
                if line.startswith("stringsvc: HTTP listening on http://"):
                    service.http_addr = line.rsplit("//", 1)[1]
                elif line.startswith("stringsvc: gRPC listening on "):
                    service.grpc_addr = line.rsplit(" ", 1)[1]
        yield service
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
