"""The NATS client side: a remote endpoint over request-reply, or a publish.

:class:`Client` is an :class:`~kitpy.endpoint.Endpoint` that sends a request
and waits for the reply within the Context's deadline (``timeout`` when the
Context has none); the remaining time travels in ``X-Timeout-Ms`` so the
server stops when the caller does.  A reply with ``Kit-Code`` is raised as the
same :class:`~kitpy.errors.KitError` subclass the handler raised.  No
responder on the subject is UNAVAILABLE; no reply in time is
DEADLINE_EXCEEDED.  :class:`Publisher` is an endpoint that publishes and
returns at once (fire and forget; nats-py buffers and flushes).

Per call: an expired Context raises DEADLINE_EXCEEDED without sending;
``before`` funcs fill the outgoing headers, the request is encoded and sent,
``after`` funcs see the reply headers, and ``finalizer`` funcs run last with
the exception or None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Generic, TypeAlias, TypeVar

import nats.aio.client
import nats.errors

from kitpy.context import Context
from kitpy.errors import DeadlineExceeded, Unavailable
from kitpy.transport.messaging.client import (
    ClientBefore,
    ClientFinalizer,
    EncodeRequest,
    outgoing_headers,
)
from kitpy.transport.messaging.headers import TIMEOUT_HEADER, error_from_reply

__all__ = ["Client", "ClientAfter", "ClientBefore", "ClientFinalizer", "Publisher"]

Req = TypeVar("Req")
Resp = TypeVar("Resp")

ClientAfter: TypeAlias = Callable[[Context, Mapping[str, str]], Context]
"""Runs after a successful reply with its headers."""
DecodeResponse: TypeAlias = Callable[[Context, bytes], Resp]


def _unavailable(subject: str, exc: nats.errors.Error) -> Unavailable:
    return Unavailable(f"NATS request on {subject} failed: {type(exc).__name__}")


class Client(Generic[Req, Resp]):
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
        if not timeout > 0:
            raise ValueError("timeout must be > 0 seconds")
        self._nc = nc
        self.subject = subject
        self._encode = encode_request
        self._decode = decode_response
        self._timeout = timeout
        self._before = tuple(before)
        self._after = tuple(after)
        self._finalizer = tuple(finalizer)

    async def __call__(self, ctx: Context, request: Req) -> Resp:
        error: BaseException | None = None
        try:
            remaining = ctx.time_remaining()
            if ctx.expired:
                raise DeadlineExceeded("deadline passed before the request was sent")
            ctx, headers = outgoing_headers(ctx, self._before)
            timeout = self._timeout
            if remaining is not None:
                headers[TIMEOUT_HEADER] = str(int(remaining * 1000))
                timeout = remaining
            payload = self._encode(ctx, request)
            try:
                reply = await self._nc.request(
                    self.subject, payload, timeout=timeout, headers=headers
                )
            except (TimeoutError, nats.errors.TimeoutError):
                raise DeadlineExceeded(f"no reply on {self.subject} in time") from None
            except nats.errors.NoRespondersError:
                raise Unavailable(f"no service answers on {self.subject}") from None
            except nats.errors.Error as exc:
                raise _unavailable(self.subject, exc) from exc
            reply_headers: Mapping[str, str] = reply.headers or {}
            failure = error_from_reply(reply_headers, reply.data)
            if failure is not None:
                raise failure
            for hook in self._after:
                ctx = hook(ctx, reply_headers)
            return self._decode(ctx, reply.data)
        except BaseException as exc:
            error = exc
            raise
        finally:
            for finalizer in self._finalizer:
                finalizer(ctx, error)


class Publisher(Generic[Req]):
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
        self._nc = nc
        self.subject = subject
        self._encode = encode_request
        self._before = tuple(before)
        self._finalizer = tuple(finalizer)

    async def __call__(self, ctx: Context, request: Req) -> None:
        error: BaseException | None = None
        try:
            ctx, headers = outgoing_headers(ctx, self._before)
            try:
                await self._nc.publish(self.subject, self._encode(ctx, request), headers=headers)
            except nats.errors.Error as exc:
                raise _unavailable(self.subject, exc) from exc
        except BaseException as exc:
            error = exc
            raise
        finally:
            for finalizer in self._finalizer:
                finalizer(ctx, error)
