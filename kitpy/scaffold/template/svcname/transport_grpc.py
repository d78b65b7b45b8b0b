"""svcname over gRPC: the servicer, the server, and a client ``Endpoints`` set.

The servicer serves the same :class:`~.endpoints.Endpoints` as the HTTP
transport; each generated method is a kitpy ``Server`` that converts
between protobuf messages and the endpoint types.  The protobuf modules in
``pb/`` are generated from ``svcname.proto`` by ``make proto``.
"""

from __future__ import annotations

from typing import Unpack

import grpc.aio
from kitpy import Context, Endpoint, GenericMiddleware
from kitpy.transport.grpc import Client, GrpcServer, Server, ServerOptions

from .endpoints import Endpoints, HelloRequest, HelloResponse
from .pb import svcname_pb2 as pb
from .pb import svcname_pb2_grpc as pb_grpc

__all__ = ["SERVICE", "Servicer", "make_grpc_client", "make_grpc_server"]

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

    Served through ``GrpcServer`` (see :func:`make_grpc_server`), which awaits
    the Server objects directly and lets them parse the request bytes.  A bare
    ``grpc.aio.server`` awaits only ``async def`` methods: there, delegate
    (``async def Hello(self, request, context): return await self._hello(request,
    context)``).
    """

    Hello: Server[HelloRequest, HelloResponse, pb.HelloRequest, pb.HelloResponse]

    def __init__(self, endpoints: Endpoints, **options: Unpack[ServerOptions]) -> None:
        self.Hello = Server(
            endpoints.hello_endpoint,
            decode_hello_request,
            encode_hello_response,
            method=f"/{SERVICE}/Hello",
            **options,
        )


def make_grpc_server(
    endpoints: Endpoints,
    *,
    reflection: bool = True,
    **options: Unpack[ServerOptions],
) -> GrpcServer:
    """A gRPC server (not yet started) serving ``endpoints``, with health and reflection.

    ``options`` go to every method's Server (``before``, ``admission``, ...).
    Start it with ``port = await server.start("127.0.0.1:8081")`` or hand it to
    ``kitpy.lifecycle.grpc.serve_grpc``; ``reflection=False`` turns server
    reflection (``grpcurl ... list``) off.
    """
    # the error handler also sees the calls GrpcServer refuses itself (while stopping)
    server = GrpcServer(reflection=reflection, error_handler=options.get("error_handler"))
    servicer = Servicer(endpoints, **options)
    server.add_service(SERVICE, pb_grpc.add_SvcnameServicer_to_server, servicer)
    return server


# -- client -------------------------------------------------------------------------


def make_grpc_client(
    channel: grpc.aio.Channel, *, middleware: GenericMiddleware | None = None
) -> Endpoints:
    """A ``Service`` that calls a remote svcname over ``channel`` (yours to close).

    Example::

        async with grpc.aio.insecure_channel("127.0.0.1:8081") as channel:
            svc = make_grpc_client(channel)
            await svc.hello(Context().with_timeout(1.0), "Ada")      # "Hello, Ada!"
    """
    hello: Endpoint[HelloRequest, HelloResponse] = Client(
        channel, SERVICE, "Hello", encode_hello_request, decode_hello_response, pb.HelloResponse
    )
    endpoints = Endpoints(hello_endpoint=hello)
    return endpoints if middleware is None else endpoints.wrap(middleware)
