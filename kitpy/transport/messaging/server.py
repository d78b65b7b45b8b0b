"""The broker-neutral server core: one path from a message to an outcome, then settle it.

:class:`MessageServer` is what the NATS and AMQP Servers share.  It wraps an
:class:`~kitpy.endpoint.Endpoint` with a message decoder and a response
encoder, as the HTTP and gRPC Servers do, and takes the same options; a
transport subclass says how to read its broker's message (:meth:`envelope`)
and settles the :class:`Outcome` its own way -- publish a reply, ack, nak.

Per message, in order: the Context is built from ``root`` (:data:`HEADERS`,
:data:`DELIVERIES` when the broker counts them, the transport's own values,
:data:`~kitpy.context.OPERATION` = the subject or queue,
:data:`~kitpy.context.REQUEST_ID` from ``X-Request-Id`` or a new one, and the
deadline from ``X-Timeout-Ms``); a message whose deadline has already passed
is answered DEADLINE_EXCEEDED without running; ``before`` funcs run,
``authenticate`` (if given) checks the caller, the body is decoded, the
endpoint runs (under the deadline when ``enforce_deadline``), ``after`` funcs
fill the outgoing headers and the response is encoded; then the transport
settles the outcome, and ``finalizer`` funcs run last with the final code.

Errors: ``error_handler`` observes every exception with its traceback (its
Context tells in :data:`~kitpy.context.ENDPOINT_ERROR` whether the endpoint raised it);
``error_encoder`` turns it into the :class:`~kitpy.errors.KitError` whose code
goes in the ``Kit-Code`` header and whose message goes in the JSON error body.
An unexpected exception is UNKNOWN with a generic message; a decoder failure
that is not a ``KitError`` is INVALID_ARGUMENT, an encoder failure INTERNAL.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import Any, Generic, NamedTuple, TypeAlias, TypedDict, TypeVar

from kitpy.context import (
    ENDPOINT_ERROR,
    ENDPOINT_NAME,
    OPERATION,
    REQUEST_ID,
    Authenticate,
    Context,
    Key,
)
from kitpy.endpoint import Endpoint, endpoint_name
from kitpy.errors import (
    Code,
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    KitError,
    error_code,
    to_kit_error,
)
from kitpy.timeouts import TimeoutWheel
from kitpy.transport.messaging.headers import (
    CODE_HEADER,
    REQUEST_ID_HEADER,
    error_body,
    timeout_from_headers,
)

__all__ = [
    "DELIVERIES",
    "HEADERS",
    "Envelope",
    "ErrorEncoder",
    "ErrorHandler",
    "MessageServer",
    "Outcome",
    "ServerAfter",
    "ServerBefore",
    "ServerFinalizer",
    "ServerOptions",
    "Settle",
    "default_error_encoder",
]

Req = TypeVar("Req")
Resp = TypeVar("Resp")
M = TypeVar("M")

HEADERS: Key[Mapping[str, str]] = Key("message.headers")
"""The message's headers (empty when it has none)."""
DELIVERIES: Key[int] = Key("message.deliveries")
"""How often the broker has delivered this message: 1 the first time, more when redelivered."""

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
EncodeResponse: TypeAlias = Callable[[Context, Resp], bytes]


class ServerOptions(TypedDict, total=False):
    """A message Server's keyword options as one type, for helpers passing them on.

    Every key is the :class:`MessageServer` option of that name (the NATS and
    AMQP Servers take the same)::

        def servers(endpoints: Endpoints, **options: Unpack[ServerOptions]) -> list[Server]:
            return [Server(endpoints.hello, decode, encode, **options)]
    """

    root: Context | None
    enforce_deadline: bool
    before: Sequence[ServerBefore]
    after: Sequence[ServerAfter]
    error_encoder: ErrorEncoder
    error_handler: ErrorHandler | None
    finalizer: Sequence[ServerFinalizer]
    authenticate: Authenticate | None


_MAX_REQUEST_ID = 128


def default_error_encoder(ctx: Context, exc: BaseException) -> KitError:
    """``KitError`` as is; ``TimeoutError`` -> DEADLINE_EXCEEDED; else UNKNOWN, generic message."""
    return to_kit_error(exc)


class Envelope(NamedTuple):
    """What a transport reads off its message before decoding: name, headers, values.

    A named tuple, like :class:`Outcome`: immutable, and built twice as fast
    as a frozen dataclass, which counts once per message.
    """

    operation: str
    """The subject or queue: the Context's OPERATION."""
    headers: Mapping[str, str]
    values: dict[Key[Any], Any]
    """The transport's own Context values (e.g. the NATS subject, DELIVERIES); a new dict
    per message, which the server extends and hands to the Context."""


class Outcome(NamedTuple):
    """What handling a message came to: the body and headers to send, and the error if any."""

    body: bytes
    headers: dict[str, str]
    error: KitError | None


Settle: TypeAlias = Callable[[M, Context, Outcome], Awaitable[None]]
"""Finishes a handled message: publishes the reply, or acks / naks / terminates it."""


class _DecodeError(Exception):
    """Marks a decoder failure that is not a KitError (becomes INVALID_ARGUMENT)."""


class MessageServer(Generic[Req, Resp, M]):
    """An endpoint served from a broker's messages of type ``M`` (see the module docstring).

    Subclasses implement :meth:`envelope`; they call :meth:`serve` with a
    ``settle`` coroutine that replies to, acks or naks the message.

    ``authenticate`` -- ``async (ctx) -> ctx``, as on the HTTP and gRPC Servers:
    run after the ``before`` funcs and before the body is decoded; it returns
    the Context the endpoint gets or raises (e.g. a JWT parser's
    ``parser.authenticate``).  Default None.
    """

    def __init__(
        self,
        endpoint: Endpoint[Req, Resp],
        decode_request: Callable[[Context, M], Req],
        encode_response: EncodeResponse[Resp],
        *,
        root: Context | None = None,
        enforce_deadline: bool = True,
        before: Sequence[ServerBefore] = (),
        after: Sequence[ServerAfter] = (),
        error_encoder: ErrorEncoder = default_error_encoder,
        error_handler: ErrorHandler | None = None,
        finalizer: Sequence[ServerFinalizer] = (),
        authenticate: Authenticate | None = None,
    ) -> None:
        self._endpoint = endpoint
        name = endpoint_name(endpoint)  # for the error path's Context (ENDPOINT_NAME)
        self._named: dict[Key[Any], Any] = {} if name is None else {ENDPOINT_NAME: name}
        self._decode = decode_request
        self._encode = encode_response
        self._root = root if root is not None else Context()
        self._enforce_deadline = enforce_deadline
        self._timeouts = TimeoutWheel()  # deadlines share timers: cheaper than asyncio.timeout
        self._before = tuple(before)
        self._after = tuple(after)
        self._error_encoder = error_encoder
        self._error_handler = error_handler
        self._finalizer = tuple(finalizer)
        self._authenticate = authenticate
        self._id_prefix = os.urandom(6).hex() + "-"
        self._ids = itertools.count(1)

    def envelope(self, msg: M) -> Envelope:
        """Read the operation name, headers and transport values off ``msg``."""
        raise NotImplementedError

    def _request_id(self, headers: Mapping[str, str]) -> str:
        given = headers.get(REQUEST_ID_HEADER)
        if given and len(given) <= _MAX_REQUEST_ID and given.isascii():
            return given
        return f"{self._id_prefix}{next(self._ids)}"

    async def serve(self, msg: M, settle: Settle[M]) -> None:
        """Handle one message, then ``settle`` it: reply to it, or ack it (JetStream).

        ``settle`` gets the :class:`Outcome` -- the encoded response, or the
        error with its JSON body and ``Kit-Code`` header.  Finalizers run after it.
        """
        envelope = self.envelope(msg)
        headers = envelope.headers
        request_id = self._request_id(headers)
        values = envelope.values
        values[HEADERS] = headers
        values[OPERATION] = envelope.operation
        values[REQUEST_ID] = request_id
        ctx = self._root
        out_headers: dict[str, str] = {}  # a success carries what ``after`` hooks add
        in_endpoint = False  # whether an error came out of the endpoint (see ENDPOINT_ERROR)
        try:
            ctx = ctx.with_values(values, timeout=timeout_from_headers(headers))
            if ctx.expired:
                raise DeadlineExceeded("the message's deadline passed before it was handled")
            for before in self._before:
                ctx = before(ctx, headers)
            if self._authenticate is not None:  # the caller first, then its body
                ctx = await self._authenticate(ctx)
            try:
                request = self._decode(ctx, msg)
            except KitError:
                raise
            except Exception as exc:
                raise _DecodeError(str(exc)) from exc
            remaining = ctx.time_remaining() if self._enforce_deadline else None
            in_endpoint = True
            if remaining is None:
                response = await self._endpoint(ctx, request)
            else:
                async with self._timeouts.timeout(remaining):
                    response = await self._endpoint(ctx, request)
            in_endpoint = False
            for after in self._after:
                ctx = after(ctx, out_headers)
            try:
                body = self._encode(ctx, response)
            except Exception as exc:
                raise Internal("could not encode the response") from exc
            outcome = Outcome(body, out_headers, None)
        except asyncio.CancelledError:
            self._finalize(ctx, Code.CANCELLED)
            raise
        except Exception as exc:
            ctx = ctx.with_values({ENDPOINT_ERROR: in_endpoint, **self._named})
            err = self._on_error(ctx, exc)
            out_headers[REQUEST_ID_HEADER] = request_id  # to match the error to the server's log
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
