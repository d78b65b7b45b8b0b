"""The NATS server side: an endpoint answering messages on a subject.

:class:`Server` wraps an :class:`~kitpy.endpoint.Endpoint` with a message
decoder and a reply encoder, as the HTTP and gRPC Servers do, and takes the
same options.  :meth:`Server.handler` binds it to a connection (replies are
published there); :class:`~kitpy.transport.nats.Subscription` subscribes it to
a subject with bounded concurrency and drains it on stop.

Per message, in order: the Context is built from ``root`` (:data:`SUBJECT`,
:data:`HEADERS`, :data:`~kitpy.context.OPERATION` = the subject,
:data:`~kitpy.context.REQUEST_ID` from ``X-Request-Id`` or a new one, and the
deadline from ``X-Timeout-Ms``); a message whose deadline has already passed
is answered DEADLINE_EXCEEDED without running; ``before`` funcs run, the body
is decoded, the endpoint runs (under the deadline when ``enforce_deadline``),
and -- when the message has a reply subject -- ``after`` funcs fill the reply
headers and the encoded response is published.  ``finalizer`` funcs run last
with the final code.

Errors: ``error_handler`` observes every exception with its traceback;
``error_encoder`` turns it into the :class:`~kitpy.errors.KitError` whose code
goes in the ``Kit-Code`` header and whose message goes in the JSON error body.
An unexpected exception is UNKNOWN with a generic message; a decoder failure
that is not a ``KitError`` is INVALID_ARGUMENT.  A message without a reply
subject (a plain publish) gets no reply either way.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Awaitable, Callable, Coroutine, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar

import nats.aio.client
from nats.aio.msg import Msg

from kitpy.context import OPERATION, REQUEST_ID, Context, Key
from kitpy.endpoint import Endpoint
from kitpy.errors import (
    Code,
    DeadlineExceeded,
    InvalidArgument,
    KitError,
    error_code,
    to_kit_error,
)

from .headers import CODE_HEADER, REQUEST_ID_HEADER, error_body, timeout_from_headers

__all__ = [
    "DELIVERIES",
    "HEADERS",
    "SUBJECT",
    "ErrorEncoder",
    "ErrorHandler",
    "Outcome",
    "Server",
    "ServerAfter",
    "ServerBefore",
    "ServerFinalizer",
    "Settle",
    "default_error_encoder",
]

Req = TypeVar("Req")
Resp = TypeVar("Resp")

SUBJECT: Key[str] = Key("nats.subject")
"""The subject the message arrived on."""
HEADERS: Key[Mapping[str, str]] = Key("nats.headers")
"""The message's headers (empty when it has none)."""
DELIVERIES: Key[int] = Key("nats.deliveries")
"""How often JetStream has delivered this message: 1 the first time, more when redelivered."""

_JS_ACK_PREFIX = "$JS.ACK."

ServerBefore: TypeAlias = Callable[[Context, Mapping[str, str]], Context]
"""Runs before decoding with the message headers; returns the Context to use."""
ServerAfter: TypeAlias = Callable[[Context, MutableMapping[str, str]], Context]
"""Runs after the endpoint succeeded; fills the reply headers."""
ServerFinalizer: TypeAlias = Callable[[Context, Code], None]
"""Runs last on every message with the final code."""
ErrorHandler: TypeAlias = Callable[[Context, BaseException], None]
"""Observes an error (e.g. logs it); gets the real exception with its traceback."""
ErrorEncoder: TypeAlias = Callable[[Context, BaseException], KitError]
"""Turns any exception into the KitError whose code and message are replied."""
DecodeRequest: TypeAlias = Callable[[Context, Msg], Req]
EncodeResponse: TypeAlias = Callable[[Context, Resp], bytes]

_MAX_REQUEST_ID = 128


def default_error_encoder(ctx: Context, exc: BaseException) -> KitError:
    """``KitError`` as is; ``TimeoutError`` -> DEADLINE_EXCEEDED; else UNKNOWN, generic message."""
    return to_kit_error(exc)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What handling a message came to: the body and headers to send, and the error if any."""

    body: bytes
    headers: dict[str, str]
    error: KitError | None


Settle: TypeAlias = Callable[[Msg, Context, Outcome], Awaitable[None]]
"""Finishes a handled message: publishes the reply, or acks / naks / terminates it."""


class _DecodeError(Exception):
    """Marks a decoder failure that is not a KitError (becomes INVALID_ARGUMENT)."""


class Server(Generic[Req, Resp]):
    """An endpoint served on a NATS subject (see the module docstring).

    Example::

        server = Server(uppercase, decode_json(UppercaseRequest), encode_json)
        sub = await Subscription.start(nc, "stringsvc.uppercase", server, queue="stringsvc")
    """

    def __init__(
        self,
        endpoint: Endpoint[Req, Resp],
        decode_request: DecodeRequest[Req],
        encode_response: EncodeResponse[Resp],
        *,
        root: Context | None = None,
        enforce_deadline: bool = True,
        before: Sequence[ServerBefore] = (),
        after: Sequence[ServerAfter] = (),
        error_encoder: ErrorEncoder = default_error_encoder,
        error_handler: ErrorHandler | None = None,
        finalizer: Sequence[ServerFinalizer] = (),
    ) -> None:
        self._endpoint = endpoint
        self._decode = decode_request
        self._encode = encode_response
        self._root = root if root is not None else Context()
        self._enforce_deadline = enforce_deadline
        self._before = tuple(before)
        self._after = tuple(after)
        self._error_encoder = error_encoder
        self._error_handler = error_handler
        self._finalizer = tuple(finalizer)
        self._id_prefix = os.urandom(6).hex() + "-"
        self._ids = itertools.count(1)

    def handler(self, nc: nats.aio.client.Client) -> Callable[[Msg], Coroutine[Any, Any, None]]:
        """The callback for request-reply on ``nc``: each outcome is published as the reply."""

        async def reply(msg: Msg, ctx: Context, outcome: Outcome) -> None:
            if msg.reply:
                await nc.publish(msg.reply, outcome.body, headers=outcome.headers)

        async def handle(msg: Msg) -> None:
            await self.serve(msg, reply)

        return handle

    def _request_id(self, headers: Mapping[str, str]) -> str:
        given = headers.get(REQUEST_ID_HEADER)
        if given and len(given) <= _MAX_REQUEST_ID and given.isascii():
            return given
        return f"{self._id_prefix}{next(self._ids)}"

    async def serve(self, msg: Msg, settle: Settle) -> None:
        """Handle one message, then ``settle`` it: reply to it, or ack it (JetStream).

        ``settle`` gets the :class:`Outcome` -- the encoded response, or the
        error with its JSON body and ``Kit-Code`` header.  Finalizers run after it.
        """
        headers: Mapping[str, str] = msg.headers or {}
        request_id = self._request_id(headers)
        values: dict[Key[Any], Any] = {
            SUBJECT: msg.subject,
            HEADERS: headers,
            OPERATION: msg.subject,
            REQUEST_ID: request_id,
        }
        if msg.reply.startswith(_JS_ACK_PREFIX):
            values[DELIVERIES] = msg.metadata.num_delivered
        ctx = self._root
        out_headers: dict[str, str] = {REQUEST_ID_HEADER: request_id}
        try:
            ctx = ctx.with_values(values, timeout=timeout_from_headers(headers))
            if ctx.expired:
                raise DeadlineExceeded("the message's deadline passed before it was handled")
            for before in self._before:
                ctx = before(ctx, headers)
            try:
                request = self._decode(ctx, msg)
            except KitError:
                raise
            except Exception as exc:
                raise _DecodeError(str(exc)) from exc
            remaining = ctx.time_remaining() if self._enforce_deadline else None
            if remaining is None:
                response = await self._endpoint(ctx, request)
            else:
                async with asyncio.timeout(remaining):
                    response = await self._endpoint(ctx, request)
            for after in self._after:
                ctx = after(ctx, out_headers)
            outcome = Outcome(self._encode(ctx, response), out_headers, None)
        except asyncio.CancelledError:
            self._finalize(ctx, Code.CANCELLED)
            raise
        except Exception as exc:
            err = self._on_error(ctx, exc)
            out_headers[CODE_HEADER] = err.code.name
            outcome = Outcome(error_body(err), out_headers, err)
        try:
            await settle(msg, ctx, outcome)
        except Exception as exc:  # e.g. the connection is gone: nothing left to answer on
            if self._error_handler is not None:
                self._error_handler(ctx, exc)
            self._finalize(ctx, error_code(exc) if outcome.error is None else outcome.error.code)
            return
        self._finalize(ctx, Code.OK if outcome.error is None else outcome.error.code)

    def _finalize(self, ctx: Context, code: Code) -> None:
        for finalizer in self._finalizer:
            finalizer(ctx, code)

    def _on_error(self, ctx: Context, exc: Exception) -> KitError:
        if isinstance(exc, _DecodeError):
            cause = exc.__cause__ or exc
            exc = InvalidArgument(f"invalid message body: {exc}"[:300])
            exc.__cause__ = cause
        if self._error_handler is not None:
            self._error_handler(ctx, exc)
        return self._error_encoder(ctx, exc)
