"""A JetStream consumer process for the fault tests: records what it handled, drains on SIGTERM.

Usage: ``python -m tests.transport.nats.consumer_app URL SUBJECT DURABLE LOG [--hang ID]``.
Each handled message appends ``<body> <deliveries>`` to LOG (flushed before the
ack).  With ``--hang ID`` the handler for body ID never returns (the test kills
the process there).  On SIGTERM the consumer drains and the process exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import TextIO

import nats

from kitpy import Context
from kitpy.transport.nats import DELIVERIES, JetStreamConsumer, Server


async def main(url: str, subject: str, durable: str, log: TextIO, hang: str | None) -> None:
    nc = await nats.connect(url)

    async def handle(ctx: Context, body: str) -> None:
        if body == hang:
            log.write(f"hanging {body}\n")
            await asyncio.Event().wait()
        await asyncio.sleep(0.001)  # some work, so a SIGTERM finds handlers in flight
        log.write(f"{body} {ctx[DELIVERIES]}\n")

    server = Server(handle, lambda ctx, msg: msg.data.decode(), lambda ctx, r: b"")
    consumer = await JetStreamConsumer.start(
        nc.jetstream(), subject, server, durable=durable, ack_wait=1.0, max_in_flight=16,
        fetch_timeout=0.2,
    )  # fmt: skip
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await consumer.drain(grace=5)
    await nc.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name in ("url", "subject", "durable", "log"):
        parser.add_argument(name)
    parser.add_argument("--hang")
    a = parser.parse_args()
    with open(a.log, "a", buffering=1) as log:  # line-buffered: each record lands at once
        asyncio.run(main(a.url, a.subject, a.durable, log, a.hang))
