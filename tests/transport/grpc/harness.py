"""A real grpc.aio server on 127.0.0.1 (port 0) serving kitpy Servers, and a channel to it.

The messages are protobuf's own ``StringValue``, so no generated code is needed:
``echo_server(endpoint)`` serves ``/test.v1.Echo/Call`` and ``echo_client``
calls it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
from google.protobuf.wrappers_pb2 import StringValue

from kitpy import Context, Endpoint
from kitpy.transport.grpc import (
    Client,
    ClientAfter,
    ClientBefore,
    ClientFinalizer,
    GrpcServer,
    Server,
)

SERVICE = "test.v1.Echo"
METHOD = "Call"
PATH = f"/{SERVICE}/{METHOD}"


def most_a_budget_arrives_as(seconds: float) -> float:
    """The largest server-side budget a client's ``seconds`` can become on the wire.

    grpc sends ``grpc-timeout`` rounded *up*, keeping about three significant
    figures (a 30 s budget can arrive as 30.1 s; 50 ms as 50 ms), so allow 1%
    plus a millisecond.  The server's clock reads later than the client's, which
    only makes the budget smaller.
    """
    return seconds * 1.01 + 0.001


def decode(ctx: Context, message: StringValue) -> str:
    return message.value


def encode(ctx: Context, value: str) -> StringValue:
    return StringValue(value=value)


def echo_server(endpoint: Endpoint[str, str], **options: Any) -> Server[str, str, Any, Any]:
    """A kitpy Server for ``endpoint`` speaking StringValue both ways."""
    return Server(endpoint, decode, encode, method=PATH, **options)


def echo_client(
    channel: grpc.aio.Channel,
    *,
    before: Sequence[ClientBefore] = (),
    after: Sequence[ClientAfter] = (),
    finalizer: Sequence[ClientFinalizer] = (),
) -> Client[str, str, StringValue, StringValue]:
    """A kitpy Client for ``/test.v1.Echo/Call``."""
    return Client(
        channel,
        SERVICE,
        METHOD,
        encode,
        decode,
        StringValue,
        before=before,
        after=after,
        finalizer=finalizer,
    )


def _add_echo(methods: Mapping[str, Server[Any, Any, Any, Any]], server: Any) -> None:
    """Register like generated code does: generic handler and registered method handlers."""
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            handler,
            request_deserializer=StringValue.FromString,
            response_serializer=StringValue.SerializeToString,
        )
        for name, handler in methods.items()
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_registered_method_handlers(SERVICE, handlers)


@dataclass
class Running:
    server: GrpcServer
    port: int
    channel: grpc.aio.Channel

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@asynccontextmanager
async def serving(server: Server[Any, Any, Any, Any], **options: Any) -> AsyncIterator[Running]:
    """Start GrpcServer(**options) serving ``server`` at ``/test.v1.Echo/Call``; yield it."""
    grpc_server = GrpcServer(**options)
    grpc_server.add_service(SERVICE, _add_echo, {METHOD: server})
    port = await grpc_server.start("127.0.0.1:0")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Running(grpc_server, port, channel)
    finally:
        async with asyncio.timeout(10):
            await channel.close()
            await grpc_server.stop(grace=0)
