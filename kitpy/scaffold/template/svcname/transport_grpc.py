"""svcname over gRPC: the servicer, a client ``Endpoints`` set, and server start.

The servicer serves the same :class:`~.endpoints.Endpoints` as the HTTP
transport; each generated method is a kitpy ``Server`` that converts
between protobuf messages and the endpoint types.  The protobuf modules in
``pb/`` are generated from ``svcname.proto`` by ``make proto``.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc.aio
from kitpy import Context, Endpoint, GenericMiddleware
from kitpy.transport.grpc import Client, GrpcServer, Server, ServerBefore, ServerFinalizer

from .endpoints import Endpoints, HelloRequest, HelloResponse
from .pb import svcname_pb2 as pb
from .pb import svcname_pb2_grpc as pb_grpc

__all__ = ["SERVICE", "Servicer", "make_grpc_client", "start_grpc_server"]

SERVICE = "svcname.v1.Svcname"
"""The full gRPC service name, as declared in svcname.proto."""


# -- codecs: protobuf message <-> endpoint types ----------------------------------


def decode_hello_request(ctx: Context, message: pb.HelloRequest) -> HelloRequest:
    return HelloRequest(name=message.name)


def encode_hello_response(ctx: Context, response: HelloResponse) -> pb.HelloResponse:
    return pb.HelloResponse(message=response.message)


def encode_hello_request(ctx: Context, request: HelloRequest) -> pb.HelloRequest:
    return pb.HelloRequest(name=request.name)


def decode_hello_response(ctx: Context, message: pb.HelloResponse) -> HelloResponse:
    return HelloResponse(message=message.message)


# -- server -------------------------------------------------------------------------


class Servicer(pb_grpc.SvcnameServicer):
    """The generated servicer with a kitpy ``Server`` as each method.

    Served through ``GrpcServer`` (see :func:`start_grpc_server`), which awaits
    the Server objects directly and lets them parse the request bytes.  A bare
    ``grpc.aio.server`` awaits only ``async def`` methods: there, delegate
    (``async def Hello(self, request, context): return await self._hello(request,
    context)``).
    """

    Hello: Server[HelloRequest, HelloResponse, pb.HelloRequest, pb.HelloResponse]

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        before: Sequence[ServerBefore] = (),
        finalizer: Sequence[ServerFinalizer] = (),
    ) -> None:
        self.Hello = Server(
            endpoints.hello_endpoint,
            decode_hello_request,
            encode_hello_response,
            method=f"/{SERVICE}/Hello",
            before=before,
            finalizer=finalizer,
        )


async def start_grpc_server(
    endpoints: Endpoints,
    *,
    host: str = "127.0.0.1",
    port: int = 8081,
    before: Sequence[ServerBefore] = (),
    finalizer: Sequence[ServerFinalizer] = (),
) -> tuple[GrpcServer, int]:
    """Serve ``endpoints`` over gRPC (with health) on ``host:port``; return the server and port.

    ``port=0`` picks a free port; the bound one is returned.  Stop it with
    ``await server.stop(grace=...)``.
    """
    server = GrpcServer()
    servicer = Servicer(endpoints, before=before, finalizer=finalizer)
    server.add_service(SERVICE, pb_grpc.add_SvcnameServicer_to_server, servicer)
    bound = await server.start(f"{host}:{port}")
    return server, bound


# -- client -------------------------------------------------------------------------


def make_grpc_client(
    channel: grpc.aio.Channel, *, middleware: GenericMiddleware | None = None
) -> Endpoints:
    """A ``Service`` that calls a remote svcname over ``channel`` (yours to close).

    Example::

        async with grpc.aio.insecure_channel("127.0.0.1:8081") as channel:
            svc = make_grpc_client(channel)
            await svc.hello("Ada")      # "Hello, Ada!"
    """
    hello: Endpoint[HelloRequest, HelloResponse] = Client(
        channel, SERVICE, "Hello", encode_hello_request, decode_hello_response, pb.HelloResponse
    )
    if middleware is not None:
        hello = middleware(hello)
    return Endpoints(hello_endpoint=hello)
