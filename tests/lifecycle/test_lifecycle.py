"""kitpy.lifecycle with real aiohttp and grpc.aio servers on 127.0.0.1, port 0.

The stop order, health while draining, a call in flight finishing within the
grace period (and one cancelled after it), a stop on a real SIGTERM to a child
process, on an exception in the body, and with a failing step.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import aiohttp
import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2

from kitpy.lifecycle import Lifecycle

from .service import ECHO, RecordingRegistrar, running

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = aiohttp.ClientTimeout(total=5)
STEPS = [
    "tiny: NOT_SERVING (/healthz 503, gRPC health NOT_SERVING)",
    "tiny: deregistered tiny in the test registry",
    "tiny: draining for 0.3 s: still serving while callers notice",
    "tiny: refusing new connections; in-flight requests get up to 5 s",
    "tiny: servers stopped, in-flight requests done",
    "tiny: telemetry flushed",
    "tiny: client sessions and channels closed",
    "tiny: stopped",
]


class Announced:
    """Collects announced lines; :meth:`wait_for` returns once a line starts with a prefix."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._changed = asyncio.Event()

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        self._changed.set()

    async def wait_for(self, prefix: str) -> None:
        async with asyncio.timeout(10):
            while not any(line.startswith(prefix) for line in self.lines):
                self._changed.clear()
                await self._changed.wait()


async def grpc_health(target: str) -> str:
    async with grpc.aio.insecure_channel(target) as channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        reply = await check(health_pb2.HealthCheckRequest(service=""), timeout=2)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


async def echo(target: str, data: bytes) -> bytes:
    async with grpc.aio.insecure_channel(target) as channel:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(ECHO)
        answer = await call(data, timeout=10)
    return answer


async def test_stop_steps_are_announced_in_order() -> None:
    announced, registrar = Announced(), RecordingRegistrar()
    async with running(announce=announced, drain=0.3, registrar=registrar) as svc:
        assert announced.lines[0].startswith("tiny: HTTP listening on http://127.0.0.1:")
        assert announced.lines[1] == f"tiny: gRPC listening on {svc.grpc_addr}"
        assert announced.lines[2] == "tiny: registered tiny in the test registry"
        asyncio.get_running_loop().call_soon(signal.raise_signal, signal.SIGTERM)
        assert await svc.life.wait_for_signal() is signal.SIGTERM
    assert announced.lines[3:] == ["tiny: SIGTERM received, shutting down", *STEPS]
    assert registrar.log == ["register", "deregister"]


async def test_health_is_not_serving_while_draining_but_calls_are_served() -> None:
    announced = Announced()
    async with (
        running(announce=announced, drain=2.0) as svc,
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
    ):
        async with session.get(f"{svc.http_url}/healthz") as r:
            assert r.status == 200
        assert await grpc_health(svc.grpc_addr) == "SERVING"
        stopping = asyncio.create_task(svc.life.stop())
        await announced.wait_for("tiny: draining")
        async with session.get(f"{svc.http_url}/healthz") as r:
            assert (r.status, await r.json()) == (503, {"status": "NOT_SERVING"})
        assert await grpc_health(svc.grpc_addr) == "NOT_SERVING"
        async with session.get(f"{svc.http_url}/hello") as r:  # still served while draining
            assert r.status == 200
        assert await echo(svc.grpc_addr, b"hi") == b"hi"
        assert await stopping == []


async def test_calls_in_flight_finish_within_grace_and_new_ones_are_refused() -> None:
    announced = Announced()
    async with (
        running(announce=announced) as svc,
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
    ):
        http_call = asyncio.create_task(session.get(f"{svc.http_url}/hello?hold=1"))
        grpc_call = asyncio.create_task(echo(svc.grpc_addr, b"hold"))
        await svc.held.until_waiting(2)
        stopping = asyncio.create_task(svc.life.stop())
        await announced.wait_for("tiny: refusing new connections")
        host, port = svc.http_url.removeprefix("http://").rsplit(":", 1)
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(asyncio.open_connection(host, int(port)), 5)
        with pytest.raises(grpc.aio.AioRpcError):  # UNAVAILABLE, or CANCELLED if it got in
            await grpc_health(svc.grpc_addr)  # just before the listener's socket closed
        assert not any("servers stopped" in line for line in announced.lines)
        svc.held.release.set()
        async with asyncio.timeout(10):
            response = await http_call
            assert (response.status, await response.json()) == (200, {"hello": "world"})
            response.release()
            assert await grpc_call == b"hold"
            assert await stopping == []
    assert announced.lines[-3:] == STEPS[-3:]


async def test_a_call_still_running_after_grace_is_cancelled() -> None:
    announced = Announced()
    loop = asyncio.get_running_loop()
    async with running(announce=announced, grace=0.3) as svc:
        grpc_call = asyncio.create_task(echo(svc.grpc_addr, b"hold"))
        await svc.held.until_waiting(1)
        started = loop.time()
        assert await asyncio.wait_for(svc.life.stop(), 10) == []
        assert loop.time() - started < 5
    with pytest.raises(grpc.aio.AioRpcError):
        await asyncio.wait_for(grpc_call, 10)


async def test_an_exception_in_the_body_stops_in_order_and_propagates() -> None:
    announced, registrar = Announced(), RecordingRegistrar()
    urls: list[str] = []

    async def fail_while_running() -> None:
        async with running(announce=announced, registrar=registrar) as svc:
            urls.append(svc.http_url)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await fail_while_running()
    assert announced.lines[3] == "tiny: RuntimeError raised, shutting down"
    assert announced.lines[4:] == [s for s in STEPS if "draining" not in s]
    assert registrar.log == ["register", "deregister"]
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"{urls[0]}/hello")


async def test_a_failing_step_is_announced_the_rest_run_and_it_is_raised() -> None:
    announced = Announced()
    closed: list[str] = []

    class Client:
        async def close(self) -> None:
            closed.append("client")

    async def run() -> None:
        async with Lifecycle(name="tiny", drain=0, announce=announced) as life:
            assert life.close(Client()) is not None
            await life.register(RecordingRegistrar(fail=True), "tiny")

    with pytest.raises(ConnectionError, match="registry unreachable"):
        await run()
    assert announced.lines == [
        "tiny: registered tiny",
        "tiny: NOT_SERVING",
        "tiny: deregistering tiny failed: ConnectionError: registry unreachable",
        "tiny: client sessions and channels closed",
        "tiny: stopped",
    ]
    assert closed == ["client"]


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="seconds >= 0"):
        Lifecycle(name="x", drain=-1)


async def test_sigterm_to_a_child_process_stops_it_in_order() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.lifecycle.service",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(30):
            while len(lines) < 2:
                raw = await proc.stdout.readline()
                assert raw, "the service exited early:\n" + "\n".join(lines)
                lines.append(raw.decode().rstrip())
            url = lines[0].rsplit(" ", 1)[1]
            async with (
                aiohttp.ClientSession(timeout=TIMEOUT) as session,
                session.get(f"{url}/hello") as r,
            ):
                assert r.status == 200
            proc.send_signal(signal.SIGTERM)
            lines += (await proc.stdout.read()).decode().splitlines()
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert lines[2:] == [
        "tiny: SIGTERM received, shutting down",
        "tiny: NOT_SERVING (/healthz 503, gRPC health NOT_SERVING)",
        "tiny: draining for 0.2 s: still serving while callers notice",
        "tiny: refusing new connections; in-flight requests get up to 5 s",
        "tiny: servers stopped, in-flight requests done",
        "tiny: telemetry flushed",
        "tiny: client sessions and channels closed",
        "tiny: stopped",
    ]
