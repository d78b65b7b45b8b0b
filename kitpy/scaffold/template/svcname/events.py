"""svcname's events, opt-in: with ``--events-nats URL`` each Hello publishes one.

The event goes to ``svcname.events.greeted``.  :class:`PublishingService`
wraps a :class:`~svcname.service.Service`: after a successful ``hello`` it
publishes ``{"name": ..., "greeting": ...}`` through a
:class:`~kitpy.transport.nats.JetStreamPublisher` and returns once the stream
stored it -- a publish that fails fails the call, so a caller's retry covers the
event too.  :func:`ensure_stream` creates the stream ``SVCNAME_EVENTS``
(subjects ``svcname.events.>``) at start if it is missing.  Another service
consumes the events through a durable :class:`~kitpy.transport.nats.JetStreamConsumer`.

To publish another event: a ``msgspec.Struct`` for it, a subject, and a call
in the method that it records.  Without ``--events-nats`` nothing here runs.
"""

from __future__ import annotations

import msgspec
import nats.aio.client
import nats.js.errors
from kitpy import Context, Endpoint
from kitpy.transport.nats import JetStreamPublisher

from .service import Service

__all__ = ["GREETED", "STREAM", "Greeted", "PublishingService", "ensure_stream"]

STREAM = "SVCNAME_EVENTS"
GREETED = "svcname.events.greeted"


class Greeted(msgspec.Struct, frozen=True):
    """The event: who was greeted, and how."""

    name: str
    greeting: str


async def ensure_stream(nc: nats.aio.client.Client) -> None:
    """Create the events stream unless it exists."""
    js = nc.jetstream()
    try:
        await js.stream_info(STREAM)
    except nats.js.errors.NotFoundError:
        await js.add_stream(name=STREAM, subjects=["svcname.events.>"])


class PublishingService:
    """A Service that publishes a :class:`Greeted` after each hello.

    ``publish`` is any endpoint taking the event, so a test passes a list's
    ``append`` in an ``async def`` instead of a broker::

        svc = PublishingService(BasicService(), record)
    """

    def __init__(self, inner: Service, publish: Endpoint[Greeted, object]) -> None:
        self._inner = inner
        self._publish = publish

    @classmethod
    def over_nats(cls, inner: Service, nc: nats.aio.client.Client) -> PublishingService:
        """Publish through JetStream on ``nc``."""
        encode = msgspec.json.Encoder().encode
        publisher: JetStreamPublisher[Greeted] = JetStreamPublisher(
            nc.jetstream(), GREETED, lambda ctx, event: encode(event)
        )
        return cls(inner, publisher)

    async def hello(self, ctx: Context, name: str) -> str:
        greeting = await self._inner.hello(ctx, name)
        await self._publish(ctx, Greeted(name=name, greeting=greeting))
        return greeting
