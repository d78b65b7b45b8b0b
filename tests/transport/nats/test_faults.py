"""JetStream under faults, with consumer processes: SIGKILL mid-handler, SIGTERM under load,
and a nats-server restart.  Nothing acked is lost; what is redelivered says so."""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import nats.aio.client
import pytest

from kitpy import Context
from kitpy.transport.nats import Client, JetStreamPublisher, Server, Subscription
from tests.conftest import Nats

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
async def nc(nats_server: Nats) -> AsyncIterator[nats.aio.client.Client]:
    conn = await nats.connect(nats_server.url, connect_timeout=2, reconnect_time_wait=0.2)
    yield conn
    await conn.close()


async def _stream(nc: nats.aio.client.Client) -> tuple[str, str]:
    tag = uuid.uuid4().hex[:10]
    await nc.jetstream().add_stream(name=f"F{tag}", subjects=[f"faults.{tag}"])
    return f"F{tag}", f"faults.{tag}"


async def _consumer(
    url: str, subject: str, log: Path, *, hang: str | None = None
) -> asyncio.subprocess.Process:
    args = ["-m", "tests.transport.nats.consumer_app", url, subject, "workers", str(log)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, *(["--hang", hang] if hang else []),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    async with asyncio.timeout(20):
        assert (await proc.stdout.readline()).strip() == b"ready"
    return proc


def _handled(*logs: Path) -> list[tuple[str, int]]:
    out = []
    for log in logs:
        for line in log.read_text().splitlines() if log.exists() else []:
            body, deliveries = line.split()
            if body != "hanging":
                out.append((body, int(deliveries)))
    return out


async def _settled(nc: nats.aio.client.Client, stream: str, within: float = 30.0) -> None:
    js = nc.jetstream()
    for _ in range(int(within / 0.1)):
        info = await js.consumer_info(stream, "workers")
        if info.num_pending == 0 and info.num_ack_pending == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not settled: {info.num_pending} pending, {info.num_ack_pending} unacked")


async def test_a_consumer_killed_mid_handler_has_its_message_redelivered_to_another(
    nats_server: Nats, nc: nats.aio.client.Client, tmp_path: Path
) -> None:
    stream, subject = await _stream(nc)
    publish: JetStreamPublisher[str] = JetStreamPublisher(
        nc.jetstream(), subject, lambda ctx, b: b.encode()
    )
    first = await _consumer(nats_server.url, subject, tmp_path / "a.log", hang="m3")
    for i in range(5):
        await publish(Context(), f"m{i}")
    for _ in range(200):
        if "hanging m3" in (tmp_path / "a.log").read_text():
            break
        await asyncio.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    async with asyncio.timeout(30):
        await first.wait()
    second = await _consumer(nats_server.url, subject, tmp_path / "b.log")
    await _settled(nc, stream)
    second.send_signal(signal.SIGTERM)
    async with asyncio.timeout(60):
        assert await second.wait() == 0
    handled = _handled(tmp_path / "a.log", tmp_path / "b.log")
    assert sorted({body for body, _ in handled}) == [f"m{i}" for i in range(5)]
    assert ("m3", 2) in handled  # the second delivery, marked as such
    assert [d for body, d in handled if body == "m3"] == [2]  # never finished by the first


async def test_ten_thousand_messages_two_consumers_one_sigtermed_all_accounted_for(
    nats_server: Nats, nc: nats.aio.client.Client, tmp_path: Path
) -> None:
    stream, subject = await _stream(nc)
    js = nc.jetstream()
    a = await _consumer(nats_server.url, subject, tmp_path / "a.log")
    b = await _consumer(nats_server.url, subject, tmp_path / "b.log")
    total = 10_000
    for start in range(0, total, 500):
        await asyncio.gather(
            *(js.publish(subject, f"m{i}".encode()) for i in range(start, start + 500))
        )
        if start == 3000:
            a.send_signal(signal.SIGTERM)  # mid-load: it drains what it holds and exits
    async with asyncio.timeout(60):  # it drains what it holds, then exits
        assert await a.wait() == 0
    await _settled(nc, stream, within=60)
    b.send_signal(signal.SIGTERM)
    async with asyncio.timeout(60):
        assert await b.wait() == 0
    handled = _handled(tmp_path / "a.log", tmp_path / "b.log")
    bodies = {body for body, _ in handled}
    assert len(bodies) == total  # every message handled
    seen: dict[str, list[int]] = {}
    for body, deliveries in handled:
        seen.setdefault(body, []).append(deliveries)
    twice = {body: d for body, d in seen.items() if len(d) > 1}
    assert all(max(d) > 1 for d in twice.values())  # handled again only as a redelivery
    assert len(twice) <= 16  # and only from the draining consumer's in-flight window


async def test_request_reply_survives_a_nats_server_restart(
    nats_server: Nats, nc: nats.aio.client.Client
) -> None:
    subject = f"faults.{uuid.uuid4().hex}.echo"

    async def echo(ctx: Context, body: bytes) -> bytes:
        return body

    sub = await Subscription.start(nc, subject, Server(echo, lambda c, m: m.data, lambda c, r: r))
    client = Client(nc, subject, lambda c, b: b, lambda c, b: b)
    assert await client(Context().with_timeout(2), b"before") == b"before"
    await asyncio.to_thread(nats_server.server.stop)
    await asyncio.to_thread(nats_server.server.start)
    for _ in range(100):  # the connection and its subscriptions come back
        try:
            assert await client(Context().with_timeout(0.5), b"after") == b"after"
            break
        except Exception:
            await asyncio.sleep(0.1)
    else:
        raise AssertionError("no reply after the restart")
    await sub.drain(grace=2)
