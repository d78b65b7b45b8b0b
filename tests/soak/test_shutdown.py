"""SIGTERM one of two etcd-registered upstreams under load: not one request fails at the proxy.

Topology, all real processes on loopback except the backend::

    load (HTTP + gRPC) -> proxy --proxy etcd://  -> upstream-1 ┐ --register, --proxy static://
                                                 -> upstream-2 ┘        -> backend (this test)

The upstreams serve Uppercase by calling a backend run by the test, which
answers at once -- except the request ``"slow one"``, which it holds until the
test releases it.  That is how upstream 1 gets a slow request in flight without
any test hook in stringsvc: its handler is waiting on a slow dependency, with
its client session in use.  (A request whose *body* is still arriving would
not do: aiohttp ignores data that arrives once shutdown has started, so such a
request waits out the grace period and is cancelled.)

Then, under continuous load on the proxy:

1. the slow request is sent to upstream 1 directly, with a sampled trace, and
   the backend sees it arrive;
2. SIGTERM to upstream 1, while its ``/healthz`` (a new connection each time)
   and gRPC health are polled;
3. once it announces that it refuses new connections: a new TCP connection and
   a new gRPC call must fail, and its etcd key must be gone (upstream 2's stays).
   Only then the backend answers the slow request, which must complete with 200;
4. upstream 1 exits 0, having announced its steps in this order: NOT_SERVING,
   deregistered, draining, refusing new connections, servers stopped, spans
   flushed, client sessions and channels closed.  The slow request's log lines fall
   between "refusing" and "servers stopped", its span before "spans flushed".

Health goes SERVING -> NOT_SERVING -> down (HTTP 200 -> 503 -> down), never back;
every request the load sent before, during and after succeeded.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import grpc.aio
import pytest
from aiohttp import web
from grpc_health.v1 import health_pb2

from kitpy.sd.etcd import EtcdClient
from kitpy.transport.http import start_app
from tests.conftest import Etcd

from .load import OK, Caller, GrpcCaller, HttpCaller, Phase, PhaseResult, Tokens, run_load
from .services import ANNOUNCE, Service, running_service
from .topology import SECRET, request_counts

pytestmark = pytest.mark.servers

RATE = 100.0
SLOW = "slow one"
PROBE_TIMEOUT = aiohttp.ClientTimeout(total=1)
STEPS = (
    "SIGTERM received",
    "NOT_SERVING",
    "deregistered",
    "draining",
    "refusing new connections",
    "servers stopped",
    "spans flushed",
    "client sessions and channels closed",
    "stopped",
)


class Backend:
    """What the upstreams call for Uppercase: answers at once, except SLOW, held until released."""

    def __init__(self) -> None:
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    async def uppercase(self, request: web.Request) -> web.Response:
        s = (await request.json())["s"]
        if s == SLOW:
            self.holding.set()
            async with asyncio.timeout(20):
                await self.release.wait()
        return web.json_response({"v": s.upper()})


@contextlib.asynccontextmanager
async def backend_server(backend: Backend) -> AsyncIterator[str]:
    """Serve ``backend`` on a free port; yield its ``host:port``."""
    app = web.Application()
    app.router.add_post("/uppercase", backend.uppercase)
    running = await start_app(app, port=0, grace_period=1)
    try:
        host, port = running.addresses[0]
        yield f"{host}:{port}"
    finally:
        await running.stop()


async def health_check(channel: grpc.aio.Channel) -> str:
    """The overall status by the standard gRPC health Check: SERVING, NOT_SERVING, ..."""
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    reply = await check(health_pb2.HealthCheckRequest(service=""), timeout=1)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


async def poll_health(service: Service, seen: dict[str, list[str]], stop: asyncio.Event) -> None:
    """Record /healthz (each on a new connection) and gRPC health until ``stop``."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        grpc.aio.insecure_channel(service.grpc_addr) as channel,
    ):
        while not stop.is_set():
            try:
                async with session.get(f"{service.http_url}/healthz", timeout=PROBE_TIMEOUT) as r:
                    seen["http"].append(str(r.status))
            except (aiohttp.ClientError, OSError, TimeoutError):
                seen["http"].append("down")
            try:
                seen["grpc"].append(await health_check(channel))
            except grpc.aio.AioRpcError:
                seen["grpc"].append("down")
            await asyncio.sleep(0.02)


async def slow_request(service: Service, trace_id: str) -> tuple[int, bytes]:
    """POST /uppercase SLOW straight to ``service`` with a sampled trace; (status, body)."""
    headers = {
        "Authorization": f"Bearer {Tokens(SECRET).current()}",
        "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
        "X-Timeout-Ms": "15000",
    }
    async with (
        asyncio.timeout(20),
        aiohttp.ClientSession() as session,
        session.post(f"{service.http_url}/uppercase", json={"s": SLOW}, headers=headers) as r,
    ):
        return r.status, await r.read()


async def wait_until_both_serve(session: aiohttp.ClientSession, ups: list[Service]) -> None:
    """Return once each upstream has served proxied Uppercase calls (bounded)."""
    async with asyncio.timeout(20):
        while True:
            counts = [await request_counts(session, up) for up in ups]
            if all(c["uppercase OK"] >= 10 for c in counts):
                return
            await asyncio.sleep(0.2)


async def assert_stopped_accepting(
    up1: Service, up2: Service, etcd: EtcdClient, prefix: str
) -> None:
    """No new TCP connection, no new gRPC call; only upstream 2 is left in etcd."""
    host, port = up1.http_addr.rsplit(":", 1)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.wait_for(asyncio.open_connection(host, int(port)), 5)
    async with grpc.aio.insecure_channel(up1.grpc_addr) as fresh:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health_check(fresh)
    # UNAVAILABLE; CANCELLED if the connection got in just before the listener's socket closed
    assert refused.value.code() in {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
    _, keys = await etcd.range_prefix(prefix.encode())
    assert [kv.key.decode() for kv in keys] == [prefix + up2.http_addr]


@pytest.mark.parametrize("proxy_transport", ["http", "grpc"])
async def test_sigterm_on_an_upstream_under_load_fails_no_request(
    etcd_server: Etcd, tmp_path: Path, proxy_transport: str
) -> None:
    etcd_url = f"etcd://127.0.0.1:{etcd_server.server.port}"
    prefix = f"/kitpy-soak/{uuid.uuid4().hex}/"
    common = ("--jwt-secret", SECRET, "--sd-prefix", prefix, "--trace-sample-ratio", "0.1")
    backend = Backend()
    async with backend_server(backend) as backend_addr:
        upstream = (
            *common, "--register", etcd_url, "--print-spans",
            "--proxy", f"static://{backend_addr}", "--proxy-timeout", "15",
            "--shutdown-drain", "1", "--shutdown-grace", "10",
        )  # fmt: skip
        front = (*common, "--proxy", etcd_url, "--proxy-transport", proxy_transport)
        async with (
            running_service("upstream-1", tmp_path, *upstream) as up1,
            running_service("upstream-2", tmp_path, *upstream) as up2,
            running_service("proxy", tmp_path, *front) as proxy,
            aiohttp.ClientSession() as session,
            grpc.aio.insecure_channel(proxy.grpc_addr) as channel,
            EtcdClient(etcd_server.url) as etcd,
        ):
            tokens = Tokens(SECRET)
            callers: dict[str, Caller] = {
                "http": HttpCaller(session, proxy.http_url, tokens),
                "grpc": GrpcCaller(channel, tokens),
            }
            signalled, exited = asyncio.Event(), asyncio.Event()
            phases = [
                Phase("before", 30, RATE, until=signalled),
                Phase("shutdown", 30, RATE, until=exited),
                Phase("after", 1.5, RATE),
            ]
            load = asyncio.create_task(run_load(phases, callers, deadline=2.0, margin=0.5))
            health: dict[str, list[str]] = {"http": [], "grpc": []}
            stop_polling = asyncio.Event()
            poller = asyncio.create_task(poll_health(up1, health, stop_polling))
            trace_id = secrets.token_hex(16)
            slow = asyncio.create_task(slow_request(up1, trace_id))
            try:
                await wait_until_both_serve(session, [up1, up2])
                await asyncio.wait_for(backend.holding.wait(), 5)  # in flight at upstream 1
                up1.proc.send_signal(signal.SIGTERM)
                signalled.set()
                await up1.wait_for_line(f"{ANNOUNCE}refusing new connections", within=10)
                await assert_stopped_accepting(up1, up2, etcd, prefix)
                backend.release.set()
                assert await slow == (200, b'{"v":"SLOW ONE"}')
                assert await up1.wait(within=20) == 0
                exited.set()
                results = await load
                stop_polling.set()
                await asyncio.wait_for(poller, 5)
            finally:
                for task in (load, poller, slow):
                    task.cancel()
            assert await proxy.stop() == 0
            assert await up2.stop() == 0

    assert_nothing_failed(results)
    assert collapse(health["http"]) == ["200", "503", "down"], health["http"]
    assert collapse(health["grpc"]) == ["SERVING", "NOT_SERVING", "down"], health["grpc"]
    assert_steps_in_order(up1, trace_id)


def collapse(states: list[str]) -> list[str]:
    """``states`` with consecutive repeats removed."""
    return [s for i, s in enumerate(states) if i == 0 or states[i - 1] != s]


def assert_nothing_failed(results: list[PhaseResult]) -> None:
    for r in results:
        assert r.count(OK) == r.scheduled, (r.phase.name, r.outcomes, r.details)
        assert r.count(OK, transport="http") > 0, r.phase.name
        assert r.count(OK, transport="grpc") > 0, r.phase.name


def assert_steps_in_order(up1: Service, trace_id: str) -> None:
    lines = up1.lines()
    started = (f"{ANNOUNCE}HTTP listening", f"{ANNOUNCE}gRPC listening", f"{ANNOUNCE}registered")
    steps = [
        (i, x) for i, x in enumerate(lines) if x.startswith(ANNOUNCE) and not x.startswith(started)
    ]
    texts = [x for _, x in steps]
    assert len(texts) == len(STEPS), texts
    assert all(x.startswith(ANNOUNCE + s) for x, s in zip(texts, STEPS, strict=True)), texts
    at = {step: i for (i, _), step in zip(steps, STEPS, strict=True)}
    # The slow request's server and client log lines: written as it finished, during the drain.
    logged = [i for i, line in enumerate(lines) if f'"trace_id":"{trace_id}"' in line]
    assert logged, "the slow request was logged"
    assert all(at["refusing new connections"] < i < at["servers stopped"] for i in logged)
    exported = [i for i, line in enumerate(lines) if f"0x{trace_id}" in line]
    assert exported, "the slow request's spans were exported"
    assert all(at["refusing new connections"] < i < at["spans flushed"] for i in exported)
