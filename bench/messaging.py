"""Benchmark: kitpy's NATS, JetStream and AMQP servers vs raw nats-py / aio-pika, same work.

Every variant decodes ``{"s": ...}`` with msgspec into the same dataclass,
upper-cases it and encodes ``{"v": ...}``; kitpy's also does what its Servers
do per message (Context with request id, operation and deadline, hooks, error
path, bounded concurrency).  Same run, same broker, rounds alternating the
order of kitpy and raw; each figure is the median of the per-round ratios of
messages per second (kitpy / raw):

* ``ratio_nats`` -- request-reply: ``CONCURRENCY`` requesters on the same
  connection against a kitpy Server + Subscription vs a raw nats-py subscriber
  serving with the same concurrency (a pool of ``CONCURRENCY`` workers fed by
  an ``asyncio.Queue``, replying with ``msg.respond``).  ``ratio_nats_sequential``
  compares with a raw subscriber that handles one message at a time inside
  nats-py's callback -- the cheapest possible server, which cannot overlap two
  handlers' I/O: a reference row, not a bar;
* ``ratio_jetstream`` -- consume + ack ``MESSAGES`` stored messages through a
  durable pull consumer: JetStreamConsumer (``BATCH`` in flight) vs a raw
  consumer with the same concurrency (a fetch loop feeding ``BATCH`` workers);
  ``ratio_jetstream_sequential`` compares with a raw loop that fetches
  ``BATCH`` and acks them one after another in one task (a reference row);
* ``ratio_amqp`` -- consume + ack ``MESSAGES`` queued messages: kitpy Consumer
  vs a raw ``queue.consume`` callback that acks.

The load and the server share one event loop (the broker is its own process),
so the ratios are conservative: the client's cost is in both.  Needs
``nats-server`` and ``rabbitmq-server`` (Debian packages of those names); the
bars are >= 0.90.  Run: ``python bench/messaging.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import msgspec
import nats
import nats.aio.client
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from nats.aio.msg import Msg

from kitpy import Code, Context
from kitpy.transport import amqp as kit_amqp
from kitpy.transport import nats as kit_nats

ROUNDS = 5
REQUESTS = 4000
CONCURRENCY = 32
MESSAGES = 4000
BATCH = 64  # JetStream: messages fetched at once (raw) and in flight (kitpy)
BODY = b'{"s": "hello, kitpy benchmark"}'


@dataclass(frozen=True)
class Upper:
    s: str


_decode = msgspec.json.Decoder(Upper).decode
_encode = msgspec.json.Encoder().encode


def work(body: bytes) -> bytes:
    """What every variant does with a message."""
    return _encode({"v": _decode(body).s.upper()})


async def uppercase(ctx: Context, request: Upper) -> dict[str, str]:
    return {"v": request.s.upper()}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listened on 127.0.0.1:{port}")


def start_nats(workdir: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    argv = ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", workdir]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_port(port, 20)
    return proc, f"nats://127.0.0.1:{port}"


def start_rabbitmq(workdir: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    Path(workdir, "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{port}\n")
    Path(workdir, "enabled_plugins").write_text("[].\n")
    env = {
        **os.environ, "HOME": workdir, "RABBITMQ_NODENAME": f"bench{port}@localhost",
        "RABBITMQ_NODE_PORT": str(port), "RABBITMQ_DIST_PORT": str(_free_port()),
        "RABBITMQ_CONFIG_FILE": f"{workdir}/rabbitmq", "RABBITMQ_MNESIA_BASE": f"{workdir}/db",
        "RABBITMQ_LOG_BASE": f"{workdir}/log", "RABBITMQ_FEATURE_FLAGS_FILE": f"{workdir}/ff",
        "RABBITMQ_ENABLED_PLUGINS_FILE": f"{workdir}/enabled_plugins",
        "RABBITMQ_PID_FILE": f"{workdir}/pid", "RABBITMQ_PLUGINS_EXPAND_DIR": f"{workdir}/px",
        "ERL_EPMD_ADDRESS": "127.0.0.1",
    }  # fmt: skip
    proc = subprocess.Popen(
        ["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _wait_port(port, 60)
    return proc, f"amqp://guest:guest@127.0.0.1:{port}/"


# -- NATS request-reply ------------------------------------------------------------------


async def _requests(nc: nats.aio.client.Client, subject: str) -> float:
    sent = 0

    async def requester() -> None:
        nonlocal sent
        while sent < REQUESTS:
            sent += 1
            reply = await nc.request(subject, BODY, timeout=10)
            assert reply.data == b'{"v":"HELLO, KITPY BENCHMARK"}', reply.data

    start = time.perf_counter()
    await asyncio.gather(*(requester() for _ in range(CONCURRENCY)))
    return REQUESTS / (time.perf_counter() - start)


async def nats_raw_sequential(nc: nats.aio.client.Client) -> float:
    subject = f"bench.seq.{uuid.uuid4().hex}"

    async def handle(msg: Msg) -> None:
        await msg.respond(work(msg.data))

    sub = await nc.subscribe(subject, cb=handle)
    try:
        return await _requests(nc, subject)
    finally:
        await sub.unsubscribe()


async def nats_raw(nc: nats.aio.client.Client) -> float:
    subject = f"bench.raw.{uuid.uuid4().hex}"
    inbox: asyncio.Queue[Msg] = asyncio.Queue(maxsize=CONCURRENCY)

    async def worker() -> None:
        while True:
            msg = await inbox.get()
            await msg.respond(work(msg.data))

    workers = [asyncio.create_task(worker()) for _ in range(CONCURRENCY)]
    sub = await nc.subscribe(subject, cb=inbox.put)
    try:
        return await _requests(nc, subject)
    finally:
        await sub.unsubscribe()
        for task in workers:
            task.cancel()


async def nats_kitpy(nc: nats.aio.client.Client) -> float:
    subject = f"bench.kitpy.{uuid.uuid4().hex}"
    server = kit_nats.Server(uppercase, lambda ctx, m: _decode(m.data), lambda ctx, r: _encode(r))
    sub = await kit_nats.Subscription.start(nc, subject, server, max_in_flight=CONCURRENCY)
    try:
        return await _requests(nc, subject)
    finally:
        await sub.drain(grace=5)


# -- JetStream consume + ack ----------------------------------------------------------------


async def _fill_stream(nc: nats.aio.client.Client) -> tuple[str, str]:
    js = nc.jetstream()
    tag = uuid.uuid4().hex[:10]
    await js.add_stream(name=f"B{tag}", subjects=[f"bench.{tag}"])
    await asyncio.gather(*(js.publish(f"bench.{tag}", BODY) for _ in range(MESSAGES)))
    return f"B{tag}", f"bench.{tag}"


async def jetstream_raw(nc: nats.aio.client.Client) -> float:
    """A raw consumer with the same concurrency: a fetch loop feeding ``BATCH`` workers."""
    js = nc.jetstream()
    stream, subject = await _fill_stream(nc)
    inbox: asyncio.Queue[Msg] = asyncio.Queue()
    done = asyncio.Event()
    count = 0

    async def worker() -> None:
        nonlocal count
        while True:
            msg = await inbox.get()
            work(msg.data)
            await msg.ack()
            count += 1
            if count == MESSAGES:
                done.set()

    start = time.perf_counter()  # like kitpy's, the time includes creating the consumer
    psub = await js.pull_subscribe(subject, durable="raw")
    workers = [asyncio.create_task(worker()) for _ in range(BATCH)]
    fetched = 0
    while fetched < MESSAGES:
        if inbox.qsize() >= BATCH:
            await asyncio.sleep(0)
            continue
        for msg in await psub.fetch(batch=BATCH, timeout=5):
            inbox.put_nowait(msg)
            fetched += 1
    await asyncio.wait_for(done.wait(), 120)
    rate = MESSAGES / (time.perf_counter() - start)
    for task in workers:
        task.cancel()
    await js.delete_stream(stream)
    return rate


async def jetstream_raw_sequential(nc: nats.aio.client.Client) -> float:
    js = nc.jetstream()
    stream, subject = await _fill_stream(nc)
    done = 0
    start = time.perf_counter()
    psub = await js.pull_subscribe(subject, durable="raw")
    while done < MESSAGES:
        for msg in await psub.fetch(batch=BATCH, timeout=5):
            work(msg.data)
            await msg.ack()
            done += 1
    rate = MESSAGES / (time.perf_counter() - start)
    await js.delete_stream(stream)
    return rate


async def jetstream_kitpy(nc: nats.aio.client.Client) -> float:
    js = nc.jetstream()
    stream, subject = await _fill_stream(nc)
    done = asyncio.Event()
    count = 0

    def acked(ctx: Context, code: Code) -> None:  # a finalizer: runs once the ack is sent
        nonlocal count
        count += 1
        if count == MESSAGES:
            done.set()

    server = kit_nats.Server(
        uppercase, lambda ctx, m: _decode(m.data), lambda ctx, r: _encode(r), finalizer=[acked]
    )
    start = time.perf_counter()
    consumer = await kit_nats.JetStreamConsumer.start(
        js, subject, server, durable="kitpy", max_in_flight=BATCH
    )
    await asyncio.wait_for(done.wait(), 120)
    rate = MESSAGES / (time.perf_counter() - start)
    await consumer.drain(grace=5)
    await js.delete_stream(stream)
    return rate


# -- AMQP consume + ack ---------------------------------------------------------------------


async def _fill_queue(channel: AbstractChannel) -> Any:
    queue = await channel.declare_queue(f"bench.{uuid.uuid4().hex}", auto_delete=False)
    for _ in range(MESSAGES // 100):
        await asyncio.gather(
            *(
                channel.default_exchange.publish(aio_pika.Message(BODY), queue.name)
                for _ in range(100)
            )
        )
    return queue


async def amqp_raw(channel: AbstractChannel) -> float:
    queue = await _fill_queue(channel)
    await channel.set_qos(prefetch_count=16)
    done = asyncio.Event()
    count = 0

    async def handle(msg: AbstractIncomingMessage) -> None:
        nonlocal count
        work(msg.body)
        await msg.ack()
        count += 1
        if count == MESSAGES:
            done.set()

    start = time.perf_counter()
    tag = await queue.consume(handle)
    await asyncio.wait_for(done.wait(), 120)
    rate = MESSAGES / (time.perf_counter() - start)
    await queue.cancel(tag)
    await queue.delete(if_unused=False, if_empty=False)
    return rate


async def amqp_kitpy(channel: AbstractChannel) -> float:
    queue = await _fill_queue(channel)
    done = asyncio.Event()
    count = 0

    async def endpoint(ctx: Context, request: Upper) -> dict[str, str]:
        nonlocal count
        count += 1
        if count == MESSAGES:
            done.set()
        return await uppercase(ctx, request)

    server = kit_amqp.Server(endpoint, lambda ctx, m: _decode(m.body), lambda ctx, r: _encode(r))
    start = time.perf_counter()
    consumer = await kit_amqp.Consumer.start(channel, queue, server, prefetch=16)
    await asyncio.wait_for(done.wait(), 120)
    rate = MESSAGES / (time.perf_counter() - start)
    await consumer.drain(grace=5)
    await queue.delete(if_unused=False, if_empty=False)
    return rate


async def paired(
    name: str, kit: Callable[[], Awaitable[float]], raw: Callable[[], Awaitable[float]], rounds: int
) -> dict[str, Any]:
    await kit()  # warm-up
    await raw()
    ratios: list[float] = []
    kit_rates: list[float] = []
    raw_rates: list[float] = []
    for i in range(rounds):
        order = [(kit, kit_rates), (raw, raw_rates)]
        for fn, into in order if i % 2 == 0 else reversed(order):
            into.append(await fn())
        ratios.append(kit_rates[-1] / raw_rates[-1])
        rates = f"kitpy {kit_rates[-1]:8.0f}/s  raw {raw_rates[-1]:8.0f}/s"
        print(f"{name:>10} round {i + 1}: {rates}  ratio {ratios[-1]:.3f}")
    return {
        f"{name}_kitpy_per_s": round(statistics.median(kit_rates)),
        f"{name}_raw_per_s": round(statistics.median(raw_rates)),
        f"ratio_{name}": round(statistics.median(ratios), 3),
    }


async def main(rounds: int, only: str | None) -> None:
    figures: dict[str, Any] = {"bench": "messaging", "rounds": rounds}

    def wanted(name: str) -> bool:
        return only is None or name.startswith(only)

    with tempfile.TemporaryDirectory() as nats_dir, tempfile.TemporaryDirectory() as rmq_dir:
        nats_proc, nats_url = start_nats(nats_dir)
        rmq_proc, rmq_url = start_rabbitmq(rmq_dir)
        try:
            nc = await nats.connect(nats_url)
            if wanted("nats"):
                figures |= await paired(
                    "nats", lambda: nats_kitpy(nc), lambda: nats_raw(nc), rounds
                )
                sequential = await paired(
                    "nats_sequential",
                    lambda: nats_kitpy(nc),
                    lambda: nats_raw_sequential(nc),
                    rounds,
                )
                figures["ratio_nats_sequential"] = sequential["ratio_nats_sequential"]
            if wanted("jetstream"):
                figures |= await paired(
                    "jetstream", lambda: jetstream_kitpy(nc), lambda: jetstream_raw(nc), rounds
                )
                sequential = await paired(
                    "jetstream_sequential",
                    lambda: jetstream_kitpy(nc),
                    lambda: jetstream_raw_sequential(nc),
                    rounds,
                )
                figures["ratio_jetstream_sequential"] = sequential["ratio_jetstream_sequential"]
            await nc.close()
            if wanted("amqp"):
                connection = await aio_pika.connect_robust(rmq_url)
                channel = await connection.channel()
                figures |= await paired(
                    "amqp", lambda: amqp_kitpy(channel), lambda: amqp_raw(channel), rounds
                )
                await connection.close()
        finally:
            nats_proc.terminate()
            os.killpg(rmq_proc.pid, signal.SIGTERM)
            nats_proc.wait(timeout=10)
            rmq_proc.wait(timeout=30)
    for key in ("ratio_nats", "ratio_jetstream", "ratio_amqp"):
        if key not in figures:
            continue
        print(f"{key}: {figures[key]}  (bar: >= 0.90)")
    print(json.dumps(figures))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"paired rounds ({ROUNDS})")
    parser.add_argument(
        "--only", choices=("nats", "jetstream", "amqp"), help="run one broker's rows only"
    )
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.only))
