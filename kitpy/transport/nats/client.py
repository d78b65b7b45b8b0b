"""The NATS client side: a remote endpoint over request-reply, or a publish.

:class:`Client` is an :class:`~kitpy.endpoint.Endpoint` that sends a request
and waits for the reply within the Context's deadline (``timeout`` when the
Context has none); the remaining time travels in ``X-Timeout-Ms`` so the
server stops when the caller does.  A reply with ``Kit-Code`` is raised as the
same :class:`~kitpy.errors.KitError` subclass the handler raised.  No
responder on the subject is UNAVAILABLE; no reply in time is
DEADLINE_EXCEEDED.  :class:`Publisher` is an endpoint that publishes and
returns at once (fire and forget; nats-py buffers and flushes).  Both run the
one call path of :class:`~kitpy.transport.messaging.MessageClient` (hooks,
deadline, finalizers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

import nats.aio.client
import nats.errors

from kitpy.context import Context
from kitpy.errors import DeadlineExceeded, Unavailable
from kitpy.transport.messaging.client import (
    ClientAfter,
    ClientBefore,
    ClientFinalizer,
    DecodeResponse,
    EncodeRequest,
    MessageClient,
    read_reply,
)

__all__ = ["Client", "ClientAfter", "Publisher", "unavailable"]

Req = TypeVar("Req")
Resp = TypeVar("Resp")


def unavailable(subject: str, exc: nats.errors.Error) -> Unavailable:
    """The error a NATS failure on ``subject`` is raised as (its type named, not its text)."""
    return Unavailable(f"NATS request on {subject} failed: {type(exc).__name__}")


class Client(MessageClient[Req, Resp]):
    """A remote endpoint reached by NATS request-reply on ``subject`` (see the module docstring).

    Example::

        uppercase = Client(nc, "stringsvc.uppercase", encode_json_request, decode_json(Upper))
        await uppercase(Context().with_timeout(0.5), UppercaseRequest(s="hi"))
    """

    def __init__(
        self,
        nc: nats.aio.client.Client,
        subject: str,
        encode_request: EncodeRequest[Req],
        decode_response: DecodeResponse[Resp],
        *,
        timeout: float = 5.0,
        before: Sequence[ClientBefore] = (),
        after: Sequence[ClientAfter] = (),
        finalizer: Sequence[ClientFinalizer] = (),
    ) -> None:
        super().__init__(
            encode_request, timeout=timeout, sends_deadline=True, before=before, finalizer=finalizer
        )
        self._nc = nc
        self.subject = subject
        self._decode = decode_response
        self._after = tuple(after)

    async def send(
        self, ctx: Context, headers: dict[str, str], payload: bytes, within: float
    ) -> Resp:
        """Send the request and wait for its reply."""
        try:
            reply = await self._nc.request(self.subject, payload, timeout=within, headers=headers)
        except (TimeoutError, nats.errors.TimeoutError):
            raise DeadlineExceeded(f"no reply on {self.subject} in time") from None
        except nats.errors.NoRespondersError:
            raise Unavailable(f"no service answers on {self.subject}") from None
        except nats.errors.Error as exc:
            raise unavailable(self.subject, exc) from exc
        headers_in: Mapping[str, str] = reply.headers or {}
        return read_reply(ctx, headers_in, reply.data, after=self._after, decode=self._decode)


class Publisher(MessageClient[Req, None]):
    """An endpoint that publishes ``request`` on ``subject`` and returns None without waiting.

    Example::

        publish = Publisher(nc, "stringsvc.events.uppercased", encode_json_request)
        await publish(ctx, Uppercased(s="hi", v="HI"))
    """

    def __init__(
        self,
        nc: nats.aio.client.Client,
        subject: str,
        encode_request: EncodeRequest[Req],
        *,
        before: Sequence[ClientBefore] = (),
        finalizer: Sequence[ClientFinalizer] = (),
    ) -> None:
        super().__init__(
            encode_request, timeout=5.0, sends_deadline=False, before=before, finalizer=finalizer
        )
        self._nc = nc
        self.subject = subject

    async def send(
        self, ctx: Context, headers: dict[str, str], payload: bytes, within: float
    ) -> None:
        """Publish (nats-py buffers and flushes; nothing waits for a reader)."""
        try:
            await self._nc.publish(self.subject, payload, headers=headers)
        except nats.errors.Error as exc:
            raise unavailable(self.subject, exc) from exc
