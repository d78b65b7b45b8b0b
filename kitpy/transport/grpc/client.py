"""The gRPC client side: one unary method of a remote service as an Endpoint.

:class:`Client` is an :class:`~kitpy.endpoint.Endpoint`, so client-side
middleware (JWT signer, breaker, retry, tracing) stacks on it like on any
other endpoint.  The channel is passed in and shared; the multi-callable for
the method is created once, at construction::

    uppercase = Client(
        channel, "stringsvc.v1.StringService", "Uppercase",
        lambda ctx, r: pb.UppercaseRequest(s=r.s),
        lambda ctx, m: UppercaseResponse(v=m.v),
        pb.UppercaseResponse,
    )
    await uppercase(Context().with_timeout(0.5), UppercaseRequest(s="hi"))

Per call: an expired Context raises :class:`~kitpy.errors.DeadlineExceeded`
without sending anything; otherwise the remaining time is the call's timeout.
``before`` funcs fill the outgoing metadata (keys lower-cased when sent), the
request is encoded and sent, ``after`` funcs see the response's initial and
trailing metadata, and ``finalizer`` funcs run last with the exception or None.
A non-OK status is raised as the matching ``KitError`` subclass with the
server's message (UNAVAILABLE when the server cannot be reached).  Cancelling
the calling task cancels the RPC, and grpc cancels the server's handler.

The upstream is not trusted.  Its message is relayed capped at 512 characters,
on one line (:func:`~kitpy.transport.grpc.error_from_rpc_error`).  A reply is
at most the channel's receive limit, grpc's channel option
``grpc.max_receive_message_length`` (default 4 MiB, the HTTP Client's default
``max_response_size`` too); grpc refuses a longer one with RESOURCE_EXHAUSTED,
which the Client raises as ``Unavailable("upstream response over 4 MiB
(grpc.max_receive_message_length)")`` -- the upstream misbehaved, it is not
rate-limiting us, and another instance may answer properly.  Raise the limit on
the channel::

    grpc.aio.insecure_channel(target, options=[("grpc.max_receive_message_length", 16 << 20)])
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from operator import methodcaller
from typing import Any, Generic, TypeAlias, TypeVar, cast

import grpc.aio

from kitpy.context import Context
from kitpy.errors import DeadlineExceeded, KitError, Unavailable
from kitpy.transport.relay import response_too_large

from .metadata import Metadata, MutableMetadata, metadata_from_pairs, metadata_to_pairs
from .status import error_from_rpc_error

__all__ = ["Client", "ClientAfter", "ClientBefore", "ClientFinalizer", "ErrorDecoder"]

Req = TypeVar("Req")
Resp = TypeVar("Resp")
PbReq = TypeVar("PbReq")
PbResp = TypeVar("PbResp")

ClientBefore: TypeAlias = Callable[[Context, MutableMetadata], Context]
"""Runs before the call; fills the outgoing metadata; returns the Context to use."""
ClientAfter: TypeAlias = Callable[[Context, Metadata, Metadata], Context]
"""Runs after a successful call with the (initial, trailing) metadata received."""
ClientFinalizer: TypeAlias = Callable[[Context, BaseException | None], None]
"""Runs last on every call with the exception raised, or None on success."""
ErrorDecoder: TypeAlias = Callable[[grpc.aio.AioRpcError], KitError]
"""Turns a failed call into the error the client raises."""

_serialize: Callable[[Any], bytes] = methodcaller("SerializeToString")

_OVERSIZE_REPLY = re.compile(r"CLIENT: Received message larger than max \(\d+ vs\. (\d{1,15})\)")
"""What grpc says when *this* side refuses a reply over the channel's receive limit
(its peer's refusal of our request says ``SERVER:``)."""

MAX_TIMEOUT = 1e8
"""Longer timeouts (~3 years) are sent as this: grpc caps what it sends at 27,000 hours
anyway, and a timeout past ~7e9 s overflows its clock and fails the call at once.
(Shared with :mod:`.stream`'s StreamClient, as is :func:`oversize_reply`; not exported.)"""


class Client(Generic[Req, Resp, PbReq, PbResp]):
    """An Endpoint that calls ``/{service}/{method}`` over ``channel`` (see the module docstring).

    ``encode_request(ctx, request)`` builds the request message;
    ``decode_response(ctx, message)`` turns the reply into the endpoint's
    response.  ``reply_type`` is the response message class (its ``FromString`` is used)
    or any ``bytes -> message`` deserializer.  ``request_serializer`` defaults
    to the message's ``SerializeToString``.

    Options (the HTTP Client takes the same ones): ``before``, ``after``,
    ``finalizer`` (hook functions run in order) and ``error_decoder`` (a failed
    call -> the ``KitError`` raised; default
    :func:`~kitpy.transport.grpc.error_from_rpc_error`).
    """

    __slots__ = (
        "_after",
        "_before",
        "_call",
        "_decode",
        "_decode_error",
        "_encode",
        "_finalizer",
        "path",
    )

    def __init__(
        self,
        channel: grpc.aio.Channel,
        service: str,
        method: str,
        encode_request: Callable[[Context, Req], PbReq],
        decode_response: Callable[[Context, PbResp], Resp],
        reply_type: type[PbResp] | Callable[[bytes], PbResp],
        *,
        before: Sequence[ClientBefore] = (),
        after: Sequence[ClientAfter] = (),
        finalizer: Sequence[ClientFinalizer] = (),
        error_decoder: ErrorDecoder = error_from_rpc_error,
        request_serializer: Callable[[PbReq], bytes] = _serialize,
    ) -> None:
        deserializer = cast(
            "Callable[[bytes], PbResp]", getattr(reply_type, "FromString", reply_type)
        )
        self.path = f"/{service}/{method}"
        """The full method name, ``"/package.Service/Method"``."""
        self._call: grpc.aio.UnaryUnaryMultiCallable[PbReq, PbResp] = channel.unary_unary(
            self.path, request_serializer=request_serializer, response_deserializer=deserializer
        )
        self._encode = encode_request
        self._decode = decode_response
        self._before = tuple(before)
        self._after = tuple(after)
        self._finalizer = tuple(finalizer)
        self._decode_error = error_decoder

    async def __call__(self, ctx: Context, request: Req) -> Resp:
        error: BaseException | None = None
        try:
            timeout = call_timeout(ctx, self.path)
            metadata = None
            if self._before:
                outgoing: dict[str, str | bytes] = {}
                for before in self._before:
                    ctx = before(ctx, outgoing)
                if outgoing:
                    metadata = metadata_to_pairs(outgoing)
            call = self._call(self._encode(ctx, request), timeout=timeout, metadata=metadata)
            reply = await await_reply(call, self.path, self._decode_error)
            if self._after:
                initial = metadata_from_pairs(await call.initial_metadata())
                trailing = metadata_from_pairs(await call.trailing_metadata())
                for after in self._after:
                    ctx = after(ctx, initial, trailing)
            return self._decode(ctx, reply)
        except BaseException as exc:
            error = exc
            raise
        finally:
            for finalizer in self._finalizer:
                finalizer(ctx, error)


def call_timeout(ctx: Context, path: str) -> float | None:
    """The timeout a call to ``path`` gets from the Context's deadline (None: no deadline).

    ``DeadlineExceeded`` when the deadline has passed (nothing is sent); a
    deadline further than :data:`MAX_TIMEOUT` is sent as that.  For code that
    calls a ``grpc.aio`` multi-callable itself with the Client's rules (the
    gateway's Connect upstream); not exported.
    """
    timeout = ctx.time_remaining()
    if timeout is not None:
        if timeout <= 0.0:
            raise DeadlineExceeded(f"deadline exceeded before calling {path}")
        if timeout > MAX_TIMEOUT:  # grpc turns a far deadline into an instant failure
            timeout = MAX_TIMEOUT
    return timeout


async def await_reply(
    call: grpc.aio.UnaryUnaryCall[Any, PbResp], path: str, decode_error: ErrorDecoder
) -> PbResp:
    """The reply of a unary ``call`` to ``path``, or the ``KitError`` for its failure.

    A failed call raises ``decode_error(exc)`` (``Unavailable`` naming the
    receive limit when it was our own limit that refused the reply).  A call
    cancelled under us (its channel was closed) raises ``Unavailable``: the
    server is gone for this caller, and a retry may route around it; our own
    caller's cancellation goes through.  The Client's rules, for code that
    calls a ``grpc.aio`` multi-callable itself (the gateway's Connect
    upstream); not exported.
    """
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        oversize = oversize_reply(exc)
        raise (decode_error(exc) if oversize is None else oversize) from exc
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # our caller cancelled us: let the cancellation through
        raise Unavailable(f"call to {path} cancelled: channel closed") from None


def oversize_reply(exc: grpc.aio.AioRpcError) -> KitError | None:
    """``Unavailable`` naming the receive limit if grpc refused the reply as too large.

    For this package's clients (Client, StreamClient); not exported.
    """
    if exc.code() is not grpc.StatusCode.RESOURCE_EXHAUSTED:
        return None
    match = _OVERSIZE_REPLY.search(exc.details() or "")
    if match is None:
        return None
    return response_too_large(int(match[1]), option="grpc.max_receive_message_length")
