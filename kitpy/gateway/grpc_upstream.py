"""The gRPC side of the Connect gateway: one unary call as an endpoint, and its metadata.

:class:`UnaryCall` (the method, the serialized request, the metadata) goes in,
:class:`UnaryReply` (the serialized reply, the response metadata) comes out:
:func:`grpc_upstream` is that endpoint over a ``grpc.aio`` channel.  It never
parses a message -- bytes in, bytes out -- so it sits behind kitpy.sd's
balancers, breakers and retries like any endpoint, per upstream instance::

    factory = lambda instance: (grpc_upstream(channel_to(instance)), None)
    upstream = lb_retry(P2C(Endpointer(instancer, factory)), max_attempts=2)

:func:`forward_headers` builds the hook that decides which request headers
travel to the upstream as gRPC metadata (the request id, and only the headers
it names).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from typing import NamedTuple, TypeAlias

import grpc.aio
from aiohttp import web

from kitpy.context import REQUEST_ID, Context
from kitpy.endpoint import Endpoint
from kitpy.errors import Code, InvalidArgument, KitError, from_code, is_client_fault
from kitpy.transport.grpc import Metadata, code_from_grpc_status
from kitpy.transport.grpc.client import ErrorDecoder, await_reply, call_timeout
from kitpy.transport.grpc.metadata import metadata_from_pairs
from kitpy.transport.relay import relayed_message

from .descriptors import ProtoMethod

__all__ = ["RequestMetadata", "UnaryCall", "UnaryReply", "forward_headers", "grpc_upstream"]

Pairs: TypeAlias = tuple[tuple[str, str | bytes], ...]


class UnaryCall(NamedTuple):
    """One upstream call: the method, the serialized request, the metadata to send.

    ``metadata`` goes to grpc as it is: lower-case keys, ``str`` values, and
    ``bytes`` under keys ending in ``-bin`` (what :func:`forward_headers` makes).
    """

    method: ProtoMethod
    payload: bytes
    metadata: Pairs = ()


class UnaryReply(NamedTuple):
    """The upstream's answer: the serialized response and its initial and trailing metadata."""

    payload: bytes
    headers: Metadata
    trailers: Metadata


# -- the upstream: one grpc.aio multi-callable per method, bytes in and out --------------


def _upstream_error(method: ProtoMethod) -> ErrorDecoder:
    def decode(err: grpc.aio.AioRpcError) -> KitError:
        code = code_from_grpc_status(err.code())
        if code is Code.OK:
            code = Code.UNKNOWN
        if is_client_fault(code):
            return from_code(code, relayed_message(err.details() or ""))
        return from_code(code, f"calling {method.name} failed: {code.name}")

    return decode


class _Method:
    """One upstream method: its multi-callable (bytes in and out) and its error decoder."""

    __slots__ = ("call", "decode_error", "path")

    def __init__(self, channel: grpc.aio.Channel, method: ProtoMethod) -> None:
        self.path = method.path
        self.call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(self.path)
        self.decode_error = _upstream_error(method)


def grpc_upstream(channel: grpc.aio.Channel) -> Endpoint[UnaryCall, UnaryReply]:
    """The endpoint that makes a :class:`UnaryCall` over ``channel``.

    It keeps the rules of a kitpy gRPC :class:`~kitpy.transport.grpc.Client`:
    the Context's deadline is the call's timeout (an expired one raises
    ``DeadlineExceeded`` without sending), a failed call raises the
    ``KitError`` for its status (whose cause is the ``AioRpcError``; the
    upstream's message only for client-fault codes), a reply over the
    channel's receive limit is ``Unavailable`` naming it.  The payload goes as
    it is and the reply's bytes come back with its initial and trailing
    metadata -- one multi-callable per method, made on its first call.

    Example::

        upstream = grpc_upstream(grpc.aio.insecure_channel("127.0.0.1:8081"))
        handler = connect_handler(upstream, descriptors)
    """
    methods: dict[str, _Method] = {}

    async def upstream(ctx: Context, call: UnaryCall) -> UnaryReply:
        method = methods.get(call.method.name)
        if method is None:
            method = methods[call.method.name] = _Method(channel, call.method)
        timeout = call_timeout(ctx, method.path)
        rpc = method.call(call.payload, timeout=timeout, metadata=call.metadata or None)
        payload = await await_reply(rpc, method.path, method.decode_error)
        initial = await rpc.initial_metadata()
        trailing = await rpc.trailing_metadata()
        return UnaryReply(payload, metadata_from_pairs(initial), metadata_from_pairs(trailing))

    return upstream


# -- request metadata ---------------------------------------------------------------

RequestMetadata: TypeAlias = Callable[[Context, web.Request], Iterable[tuple[str, str | bytes]]]
"""Builds the gRPC metadata an upstream call carries from the incoming request."""

_RESERVED = frozenset(
    {"connection", "content-length", "content-type", "host", "te", "transfer-encoding", "upgrade"}
)


def _binary(name: str, value: str) -> bytes:
    try:  # Connect sends -bin values base64, padded or not
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument(f"header {name} is not valid base64") from None


def forward_headers(*names: str) -> RequestMetadata:
    """A metadata hook that sends the request id and the request headers ``names`` upstream.

    The request id (``x-request-id``: the caller's, or the one the gateway
    made) always goes; other headers only when named, so what reaches an
    upstream is the gateway's policy (forward ``authorization`` only if the
    upstream should see the caller's credentials).  Header values must be
    printable ASCII (else ``invalid_argument``, naming the header); a name
    ending in ``-bin`` carries base64, decoded to bytes.

    Example::

        connect_handler(channel, descriptors, metadata=forward_headers("x-tenant", "traceparent"))
    """
    keys = tuple(name.lower() for name in names)
    for key in keys:
        if key in _RESERVED or key.startswith(("grpc-", ":")) or not key.isascii():
            raise ValueError(f"header {key!r} cannot be sent as gRPC metadata")

    def metadata(ctx: Context, request: web.Request) -> Iterable[tuple[str, str | bytes]]:
        request_id = ctx.get(REQUEST_ID)
        pairs: list[tuple[str, str | bytes]] = (
            [] if request_id is None else [("x-request-id", request_id)]
        )
        headers = request.headers
        for key in keys:
            for value in headers.getall(key, ()):
                if key.endswith("-bin"):
                    pairs.append((key, _binary(key, value)))
                elif value.isascii() and value.isprintable():
                    pairs.append((key, value))
                else:
                    raise InvalidArgument(f"header {key} must be printable ASCII")
        return pairs

    return metadata
