"""JetStream: durable queues on NATS -- a Server with explicit acks, and a confirmed publish.

:class:`JetStreamConsumer` feeds a :class:`~kitpy.transport.nats.Server` from
a durable pull consumer and settles each message by its outcome:

* success -> **ack**;
* a client fault (INVALID_ARGUMENT, NOT_FOUND, ... -- retrying cannot help), or
  a message whose deadline passed -> **dead-lettered, then terminated**, so it
  never loops;
* anything else -> **nak** with a growing delay (``backoff``), until the
  message has been delivered ``max_deliver`` times; then it is dead-lettered
  and terminated.

Dead-lettering publishes the original body and headers, plus ``Kit-Code``,
``Kit-Error``, ``Kit-Subject`` and ``Kit-Deliveries``, to ``dead_letter``
through JetStream, so a stream must store that subject: if the publish is not
confirmed, the message is nak-ed instead and nothing is lost.  Without
``dead_letter`` such messages are terminated (the Server's error handler and
finalizers have seen them).  A handler running longer than half of
``ack_wait`` tells the server it is still working (``in_progress``), so a
long handler is not redelivered to someone else.  At most ``max_in_flight``
messages are handled at once.  :meth:`JetStreamConsumer.drain` stops fetching,
lets handlers in flight finish within ``grace`` (and acks them), and naks the
rest for immediate redelivery.

:class:`JetStreamPublisher` is an endpoint that publishes and returns once the
stream has stored the message (its ``PubAck``); a subject no stream stores is
UNAVAILABLE, not silence.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any, TypeVar

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, PubAck
from nats.js.client import JetStreamContext

from kitpy.context import Context
from kitpy.errors import Code, DeadlineExceeded, Unavailable, is_client_fault
from kitpy.transport.messaging.client import (
    ClientBefore,
    ClientFinalizer,
    EncodeRequest,
    MessageClient,
)
from kitpy.transport.messaging.server import Outcome

from .client import unavailable
from .server import Server

__all__ = ["JetStreamConsumer", "JetStreamPublisher"]

Req = TypeVar("Req")


class JetStreamConsumer:
    """A Server fed by a durable JetStream pull consumer (see the module docstring).

    Example::

        js = nc.jetstream()
        consumer = await JetStreamConsumer.start(
            js, "stringsvc.events.uppercased", server, durable="wordcount",
            dead_letter="dead.wordcount",
        )
        ...
        await consumer.drain(grace=10.0)
    """

    def __init__(
        self,
        js: JetStreamContext,
        psub: JetStreamContext.PullSubscription,
        server: Server[Any, Any],
        *,
        max_in_flight: int,
        ack_wait: float,
        max_deliver: int,
        backoff: Sequence[float],
        dead_letter: str | None,
        fetch_timeout: float,
    ) -> None:
        self._js = js
        self._psub = psub
        self._server = server
        self._max_in_flight = max_in_flight
        self._refill_at = max(1, max_in_flight // 2)
        self._inbox: asyncio.Queue[Msg] = asyncio.Queue()
        self._held = 0  # fetched and not yet settled: waiting in the inbox or being handled
        self._room = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self._stopping = False
        self._ack_wait = ack_wait
        self._max_deliver = max_deliver
        self._backoff = tuple(backoff)
        self._dead_letter = dead_letter
        self._fetch_timeout = fetch_timeout
        self._running: dict[int, tuple[Msg, float]] = {}  # id -> message, when handling began
        self._loop: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls,
        js: JetStreamContext,
        subject: str,
        server: Server[Any, Any],
        *,
        durable: str,
        stream: str | None = None,
        max_in_flight: int = 16,
        ack_wait: float = 30.0,
        max_deliver: int = 5,
        backoff: Sequence[float] = (1.0, 5.0, 30.0),
        dead_letter: str | None = None,
        fetch_timeout: float = 1.0,
    ) -> JetStreamConsumer:
        """Bind (creating if needed) the durable consumer ``durable`` on ``subject`` and start."""
        if max_in_flight < 1 or max_deliver < 1 or not ack_wait > 0 or not backoff:
            raise ValueError("need max_in_flight >= 1, max_deliver >= 1, ack_wait > 0, a backoff")
        config = ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ack_wait,
            max_deliver=-1,  # counted here, so the last failure can be dead-lettered
            max_ack_pending=max(1000, max_in_flight),
        )
        psub = await js.pull_subscribe(subject, durable=durable, stream=stream, config=config)
        consumer = cls(
            js, psub, server, max_in_flight=max_in_flight, ack_wait=ack_wait,
            max_deliver=max_deliver, backoff=backoff, dead_letter=dead_letter,
            fetch_timeout=fetch_timeout,
        )  # fmt: skip
        consumer._workers = [
            asyncio.create_task(consumer._work(), name=f"jetstream {durable} worker")
            for _ in range(max_in_flight)
        ]
        consumer._loop = asyncio.create_task(consumer._fetch_forever(), name=f"jetstream {durable}")
        consumer._ticker = asyncio.create_task(
            consumer._keep_alive(), name=f"jetstream {durable} ack"
        )
        return consumer

    @property
    def stopping(self) -> bool:
        """True once :meth:`drain` has begun."""
        return self._stopping

    @property
    def in_flight(self) -> int:
        """Messages fetched and not yet settled (being handled, or waiting for a worker)."""
        return self._held

    async def _fetch_forever(self) -> None:
        while not self._stopping:
            free = self._max_in_flight - self._held
            if free < self._refill_at:  # fetch in batches, not one message per round trip
                self._room.clear()
                await self._room.wait()
                continue
            try:
                msgs = await self._psub.fetch(batch=free, timeout=self._fetch_timeout)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            except nats.errors.Error:
                await asyncio.sleep(self._fetch_timeout)  # reconnecting: try again shortly
                continue
            if self.stopping:  # fetched while the drain began: give them back
                for msg in msgs:
                    with contextlib.suppress(Exception):
                        await msg.nak()
                return
            self._held += len(msgs)
            for msg in msgs:
                self._inbox.put_nowait(msg)

    async def _work(self) -> None:
        clock = asyncio.get_running_loop().time
        running = self._running
        while True:
            msg = await self._inbox.get()
            key = id(msg)
            running[key] = (msg, clock())
            try:
                await self._server.serve(msg, self._settle)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await asyncio.shield(msg.nak())  # stopped mid-handler: redeliver at once
                raise
            finally:
                del running[key]
                self._held -= 1
                if self._max_in_flight - self._held >= self._refill_at:
                    self._room.set()  # wake the fetch loop only when a batch fits
                self._inbox.task_done()

    async def _keep_alive(self) -> None:
        """One ticker for all handlers: those running past half of ack_wait say so."""
        half = self._ack_wait / 2
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(half / 2)
            now = loop.time()
            for msg, started in list(self._running.values()):
                if now - started >= half:
                    with contextlib.suppress(nats.errors.Error):
                        await msg.in_progress()

    async def _settle(self, msg: Msg, ctx: Context, outcome: Outcome) -> None:
        err = outcome.error
        if err is None:
            await msg.ack()
            return
        deliveries = msg.metadata.num_delivered
        final = is_client_fault(err.code) or err.code is Code.DEADLINE_EXCEEDED
        if not final and deliveries < self._max_deliver:
            delay = self._backoff[min(deliveries, len(self._backoff)) - 1]
            await msg.nak(delay=delay)
            return
        if self._dead_letter is not None:
            headers = {
                **(msg.headers or {}),
                **outcome.headers,
                "Kit-Error": err.message[:500],
                "Kit-Subject": msg.subject,
                "Kit-Deliveries": str(deliveries),
            }
            try:
                await self._js.publish(self._dead_letter, msg.data, headers=headers)
            except (TimeoutError, nats.errors.Error):
                await msg.nak(delay=self._backoff[-1])  # not stored anywhere yet: keep it
                raise
        await msg.term()

    async def drain(self, *, grace: float = 10.0) -> None:
        """Stop fetching; let handlers finish within ``grace`` s; nak the rest; unsubscribe."""
        if self._loop is not None:
            # the flag stops the loop even when a cancel is lost: on 3.11 asyncio.wait_for
            # (inside nats-py's fetch) can swallow a cancel that meets a finished fetch
            self._stopping = True
            self._loop.cancel()
            await asyncio.wait({self._loop}, timeout=self._fetch_timeout + 5.0)
            self._loop = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._inbox.join()
        with contextlib.suppress(nats.errors.Error):
            await self._psub.unsubscribe()  # first, so a nak-ed message goes to another consumer
        for worker in self._workers:
            worker.cancel()  # a handler still running naks its message
        await asyncio.wait(self._workers, timeout=2.0)
        while not self._inbox.empty():  # fetched, never started: give them back too
            with contextlib.suppress(Exception):
                await self._inbox.get_nowait().nak()
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None


class JetStreamPublisher(MessageClient[Req, PubAck]):
    """An endpoint that publishes to a stream and returns its ``PubAck`` once stored.

    Example::

        publish = JetStreamPublisher(nc.jetstream(), "stringsvc.events.uppercased", encode)
        ack = await publish(ctx, Uppercased(s="hi", v="HI"))   # ack.seq: its place in the stream
    """

    def __init__(
        self,
        js: JetStreamContext,
        subject: str,
        encode_request: EncodeRequest[Req],
        *,
        timeout: float = 5.0,
        before: Sequence[ClientBefore] = (),
        finalizer: Sequence[ClientFinalizer] = (),
    ) -> None:
        super().__init__(
            encode_request,
            timeout=timeout,
            sends_deadline=False,
            before=before,
            finalizer=finalizer,
        )
        self._js = js
        self.subject = subject

    async def send(
        self, ctx: Context, headers: dict[str, str], payload: bytes, within: float
    ) -> PubAck:
        """Publish and wait for the stream to store the message."""
        subject = self.subject
        try:
            return await self._js.publish(subject, payload, timeout=within, headers=headers)
        except nats.js.errors.NoStreamResponseError:
            raise Unavailable(f"no stream stores {subject}") from None
        except (TimeoutError, nats.errors.TimeoutError):
            raise DeadlineExceeded(f"the stream did not confirm {subject} in time") from None
        except nats.errors.Error as exc:
            raise unavailable(subject, exc) from exc
