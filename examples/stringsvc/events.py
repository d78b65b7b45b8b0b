"""stringsvc's events: every Uppercase publishes ``stringsvc.events.uppercased`` to JetStream.

:class:`PublishingService` wraps a :class:`~examples.stringsvc.service.StringService`:
after a successful ``uppercase`` it publishes ``{"s": ..., "v": ...}`` through a
:class:`~kitpy.transport.nats.JetStreamPublisher` and returns once the stream
stored it (a publish that fails fails the call, so the caller's retry covers
the event too).  The stream ``STRINGSVC_EVENTS`` (subjects ``stringsvc.events.>``)
is created at start if missing.  ``examples/wordcount`` consumes the events
through a durable consumer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import nats.aio.client
import nats.js.errors

from kitpy import Context, Endpoint
from kitpy.transport.nats import JetStreamPublisher

from .service import StringService

__all__ = ["STREAM", "UPPERCASED", "PublishingService", "Uppercased", "ensure_stream"]

STREAM = "STRINGSVC_EVENTS"
UPPERCASED = "stringsvc.events.uppercased"


class Uppercased(msgspec.Struct, frozen=True):
    """The event: what was asked and what was answered."""

    s: str
    v: str


async def ensure_stream(nc: nats.aio.client.Client) -> None:
    """Create the events stream unless it exists."""
    js = nc.jetstream()
    try:
        await js.stream_info(STREAM)
    except nats.js.errors.NotFoundError:
        await js.add_stream(name=STREAM, subjects=["stringsvc.events.>"])


class PublishingService:
    """A StringService that publishes an :class:`Uppercased` event after each uppercase."""

    def __init__(self, inner: StringService, publish: Endpoint[Uppercased, object]) -> None:
        self._inner = inner
        self._publish = publish

    @classmethod
    def over_nats(cls, inner: StringService, nc: nats.aio.client.Client) -> PublishingService:
        """Publish through JetStream on ``nc``."""
        encode = msgspec.json.Encoder().encode
        publisher: JetStreamPublisher[Uppercased] = JetStreamPublisher(
            nc.jetstream(), UPPERCASED, lambda ctx, event: encode(event)
        )
        return cls(inner, publisher)

    async def uppercase(self, ctx: Context, s: str) -> str:
        v = await self._inner.uppercase(ctx, s)
        await self._publish(ctx, Uppercased(s=s, v=v))
        return v

    async def count(self, ctx: Context, s: str) -> int:
        return await self._inner.count(ctx, s)

    def tokens(self, ctx: Context, s: str) -> AsyncIterator[str]:
        return self._inner.tokens(ctx, s)
