"""The broker-neutral client side: hook types and :class:`MessageClient`, the one call path.

Every broker client -- NATS request-reply and publish, JetStream publish, AMQP
request-reply and publish -- is a :class:`MessageClient`: per call, an expired
Context raises DEADLINE_EXCEEDED without sending; the outgoing headers start
with the request id and are filled by ``before`` hooks; for request-reply the
remaining time travels in ``X-Timeout-Ms``; the request is encoded and handed
to the transport's :meth:`MessageClient.send` with the time it may take; and
``finalizer`` hooks run last with the exception raised, or None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Generic, TypeAlias, TypeVar

from kitpy.context import REQUEST_ID, Context
from kitpy.errors import DeadlineExceeded
from kitpy.transport.messaging.headers import REQUEST_ID_HEADER, TIMEOUT_HEADER, error_from_reply

__all__ = [
    "ClientAfter",
    "ClientBefore",
    "ClientFinalizer",
    "DecodeResponse",
    "EncodeRequest",
    "MessageClient",
    "outgoing_headers",
    "read_reply",
]

Req = TypeVar("Req")
Resp = TypeVar("Resp")

ClientBefore: TypeAlias = Callable[[Context, MutableMapping[str, str]], Context]
"""Runs before sending; fills the outgoing headers; returns the Context to use."""
ClientFinalizer: TypeAlias = Callable[[Context, BaseException | None], None]
"""Runs last on every call with the exception raised, or None on success."""
EncodeRequest: TypeAlias = Callable[[Context, Req], bytes]
"""Turns the endpoint's request into the message body."""
ClientAfter: TypeAlias = Callable[[Context, Mapping[str, str]], Context]
"""Runs after a successful reply with its headers."""
DecodeResponse: TypeAlias = Callable[[Context, bytes], Resp]
"""Turns a reply body into the endpoint's response."""


def read_reply(
    ctx: Context,
    headers: Mapping[str, str],
    body: bytes,
    *,
    after: Sequence[ClientAfter],
    decode: DecodeResponse[Resp],
) -> Resp:
    """The response a reply carries: raise the KitError of a ``Kit-Code`` reply, else run
    ``after`` hooks and decode the body."""
    failure = error_from_reply(headers, body)
    if failure is not None:
        raise failure
    for hook in after:
        ctx = hook(ctx, headers)
    return decode(ctx, body)


def outgoing_headers(
    ctx: Context, before: Sequence[ClientBefore]
) -> tuple[Context, dict[str, str]]:
    """The headers a request starts with (its request id), then filled by ``before`` hooks."""
    headers: dict[str, str] = {}
    request_id = ctx.get(REQUEST_ID)
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    for hook in before:
        ctx = hook(ctx, headers)
    return ctx, headers


class MessageClient(Generic[Req, Resp]):
    """An endpoint that sends a message on a broker (see the module docstring).

    Subclasses implement :meth:`send`.  ``timeout`` bounds a call whose Context
    has no deadline; ``sends_deadline`` puts the remaining time in the
    request's headers (request-reply does; a publish, read later by someone
    else, does not).
    """

    def __init__(
        self,
        encode_request: EncodeRequest[Req],
        *,
        timeout: float,
        sends_deadline: bool,
        before: Sequence[ClientBefore],
        finalizer: Sequence[ClientFinalizer],
    ) -> None:
        if not timeout > 0:
            raise ValueError("timeout must be > 0 seconds")
        self._encode = encode_request
        self._timeout = timeout
        self._sends_deadline = sends_deadline
        self._before = tuple(before)
        self._finalizer = tuple(finalizer)

    async def __call__(self, ctx: Context, request: Req) -> Resp:
        error: BaseException | None = None
        try:
            if ctx.expired:
                raise DeadlineExceeded("deadline passed before the message was sent")
            remaining = ctx.time_remaining()
            ctx, headers = outgoing_headers(ctx, self._before)
            if remaining is None:
                remaining = self._timeout
            elif self._sends_deadline:
                headers[TIMEOUT_HEADER] = str(int(remaining * 1000))
            return await self.send(ctx, headers, self._encode(ctx, request), remaining)
        except BaseException as exc:
            error = exc
            raise
        finally:
            for finalizer in self._finalizer:
                finalizer(ctx, error)

    async def send(
        self, ctx: Context, headers: dict[str, str], payload: bytes, within: float
    ) -> Resp:
        """Send ``payload`` with ``headers`` in at most ``within`` seconds; return the result."""
        raise NotImplementedError
