"""Count the words of every string stringsvc upper-cases, from its JetStream events.

Run beside ``python -m examples.stringsvc --nats URL``::

    python -m examples.wordcount --nats nats://127.0.0.1:4222

A durable pull consumer (``wordcount``) reads ``stringsvc.events.uppercased``:
each event is acked once counted, so a restart resumes where it stopped and
a crash mid-event means it is delivered again.  Prints ``words <n> total <t>``
per event; SIGTERM drains the handlers in flight and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import msgspec
import nats

from examples.stringsvc.events import STREAM, UPPERCASED, Uppercased, ensure_stream
from kitpy import Context
from kitpy.transport.nats import JetStreamConsumer, Server


async def run(url: str, *, durable: str = "wordcount") -> None:
    """Consume until SIGTERM or SIGINT."""
    nc = await nats.connect(url, name="wordcount")
    await ensure_stream(nc)
    total = 0
    decode = msgspec.json.Decoder(Uppercased).decode

    async def count_words(ctx: Context, event: Uppercased) -> None:
        nonlocal total
        words = len(event.s.split())
        total += words
        print(f"words {words} total {total}", flush=True)

    server = Server(count_words, lambda ctx, msg: decode(msg.data), lambda ctx, r: b"")
    consumer = await JetStreamConsumer.start(
        nc.jetstream(), UPPERCASED, server, durable=durable, stream=STREAM, fetch_timeout=0.5
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("wordcount: consuming", UPPERCASED, flush=True)
    await stop.wait()
    await consumer.drain(grace=5.0)
    await nc.close()
    print("wordcount: stopped", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nats", default="nats://127.0.0.1:4222", help="NATS server URL")
    parser.add_argument("--durable", default="wordcount", help="durable consumer name")
    args = parser.parse_args()
    asyncio.run(run(args.nats, durable=args.durable))


if __name__ == "__main__":
    main()
