"""Start ``python -m examples.stringsvc`` as a real process and read where it listens.

Used by the tests that exercise the wired-up service (auth, metrics, proxying,
shutdown).  Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
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
    _reader: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def http_url(self) -> str:
        return f"http://{self.http_addr}"

    def keep_reading(self) -> None:
        """Read the output into ``lines`` in the background from now on.

        For tests that make the service log a lot: a pipe nobody reads fills
        up, and then the service blocks on its next log line.
        """
        if self._reader is None:
            self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while raw := await self.proc.stdout.readline():
            self.lines.append(raw.decode().rstrip())

    async def wait_for_line(
        self, matches: Callable[[str], bool], *, start: int = 0, within: float
    ) -> str | None:
        """The first line from index ``start`` on that ``matches``, waiting at most ``within`` s.

        Needs :meth:`keep_reading`.  Returns None when no line matched in time.
        """
        assert self._reader is not None, "call keep_reading() first"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        index = start
        while True:
            for line in self.lines[index:]:
                if matches(line):
                    return line
            index = len(self.lines)
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(0.02)

    async def stop(self, sig: signal.Signals = signal.SIGTERM, *, within: float = 30) -> int:
        """Send ``sig``, collect the rest of the output, return the exit code (bounded)."""
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        assert self.proc.stdout is not None
        async with asyncio.timeout(within):
            if self._reader is not None:
                await self._reader
            else:
                rest = (await self.proc.stdout.read()).decode()
                self.lines.extend(rest.splitlines())
            return await self.proc.wait()


@contextlib.asynccontextmanager
async def running_service(*args: str, extra: Sequence[str] = ()) -> AsyncIterator[RunningService]:
    """Run stringsvc on free ports with ``args``; yield once both servers listen."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "examples.stringsvc",
        "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0",
        "--log-format", "json", "--no-print-spans", "--shutdown-drain", "0",
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
        if service._reader is not None:
            async with asyncio.timeout(10):
                await service._reader  # ends at the end of the output
