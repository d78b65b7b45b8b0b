"""stringsvc over gRPC: the servicer, the server, and a client ``Endpoints`` set.

The servicer binds the same :class:`~examples.stringsvc.endpoints.Endpoints`
the HTTP transport serves; each generated method is a kitpy ``Server`` that
converts between protobuf messages and the endpoint types.
``make_grpc_client`` builds the mirror image: an ``Endpoints`` set whose
endpoints call a remote stringsvc, so it is a ``StringService`` too.

Run beside HTTP in one process, under the lifecycle (see ``__main__``)::

    port = await serve_grpc(life, make_grpc_server(endpoints), address="127.0.0.1:8081")

The server has the standard health service and, unless ``reflection=False``,
server reflection, so ``grpcurl -plaintext 127.0.0.1:8081 list`` works.

The protobuf modules in ``pb/`` are generated from ``stringsvc.proto`` by
``make proto``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Unpack

import grpc.aio

from kitpy import Context, GenericMiddleware
from kitpy.endpoint.stream import StreamMiddleware
from kitpy.transport.grpc import (
    Client,
    ClientBefore,
    GrpcServer,
    Server,
    ServerOptions,
    StreamClient,
    StreamServer,
)

from .endpoints import (
    CountRequest,
    CountResponse,
    Endpoints,
    TokensRequest,
    TokensResponse,
    UppercaseRequest,
    UppercaseResponse,
)
from .pb import stringsvc_pb2 as pb
from .pb import stringsvc_pb2_grpc as pb_grpc

__all__ = [
    "SERVICE",
    "StringServicer",
    "make_grpc_client",
    "make_grpc_server",
    "start_grpc_server",
]

SERVICE = "stringsvc.v1.StringService"
"""The full gRPC service name, as declared in stringsvc.proto."""


# -- codecs: protobuf message <-> endpoint types ----------------------------------


def decode_uppercase_request(ctx: Context, message: pb.UppercaseRequest) -> UppercaseRequest:
    return UppercaseRequest(s=message.s)


def encode_uppercase_response(ctx: Context, response: UppercaseResponse) -> pb.UppercaseResponse:
    return pb.UppercaseResponse(v=response.v)


def decode_count_request(ctx: Context, message: pb.CountRequest) -> CountRequest:
    return CountRequest(s=message.s)


def encode_count_response(ctx: Context, response: CountResponse) -> pb.CountResponse:
    return pb.CountResponse(v=response.v)


def encode_uppercase_request(ctx: Context, request: UppercaseRequest) -> pb.UppercaseRequest:
    return pb.UppercaseRequest(s=request.s)


def decode_uppercase_response(ctx: Context, message: pb.UppercaseResponse) -> UppercaseResponse:
    return UppercaseResponse(v=message.v)


def encode_count_request(ctx: Context, request: CountRequest) -> pb.CountRequest:
    return pb.CountRequest(s=request.s)


def decode_count_response(ctx: Context, message: pb.CountResponse) -> CountResponse:
    return CountResponse(v=message.v)


def decode_tokens_request(ctx: Context, message: pb.TokensRequest) -> TokensRequest:
    return TokensRequest(s=message.s)


def encode_tokens_response(ctx: Context, response: TokensResponse) -> pb.TokensResponse:
    return pb.TokensResponse(v=response.v)


def encode_tokens_request(ctx: Context, request: TokensRequest) -> pb.TokensRequest:
    return pb.TokensRequest(s=request.s)


def decode_tokens_response(ctx: Context, message: pb.TokensResponse) -> TokensResponse:
    return TokensResponse(v=message.v)


# -- server -------------------------------------------------------------------------


class StringServicer(pb_grpc.StringServiceServicer):
    """The generated servicer with a kitpy ``Server`` as each method.

    Serve it through :class:`~kitpy.transport.grpc.GrpcServer` (as
    :func:`start_grpc_server` does): it awaits the Server objects directly and
    lets them parse the request bytes, so a call runs one coroutine of kitpy's
    own, not three.  (A bare ``grpc.aio.server`` awaits only ``async def``
    methods: there, write ``async def Uppercase(self, request, context): return
    await self._uppercase(request, context)`` instead.)

    ``options`` go to every method's Server (e.g. metadata readers, an error
    logger, a metrics finalizer, the JWT check that runs before a message is
    parsed, the concurrency limit).
    """

    Uppercase: Server[
        UppercaseRequest, UppercaseResponse, pb.UppercaseRequest, pb.UppercaseResponse
    ]
    Count: Server[CountRequest, CountResponse, pb.CountRequest, pb.CountResponse]
    Tokens: StreamServer[TokensRequest, TokensResponse, pb.TokensRequest, pb.TokensResponse]

    def __init__(self, endpoints: Endpoints, **options: Unpack[ServerOptions]) -> None:
        self.Uppercase = Server(
            endpoints.uppercase_endpoint,
            decode_uppercase_request,
            encode_uppercase_response,
            method=f"/{SERVICE}/Uppercase",
            **options,
        )
        self.Count = Server(
            endpoints.count_endpoint,
            decode_count_request,
            encode_count_response,
            method=f"/{SERVICE}/Count",
            **options,
        )
        self.Tokens = StreamServer(  # server streaming: one request, a response per word
            endpoints.tokens_endpoint,
            decode_tokens_request,
            encode_tokens_response,
            kind="unary_stream",
            method=f"/{SERVICE}/Tokens",
            **options,
        )


def make_grpc_server(
    endpoints: Endpoints,
    *,
    reflection: bool = True,
    **options: Unpack[ServerOptions],
) -> GrpcServer:
    """A gRPC server (not yet started) serving ``endpoints``, with health and reflection.

    ``options`` go to every method's Server (see :class:`StringServicer`).
    Start it with ``await server.start("127.0.0.1:8081")`` (it returns the bound
    port) or hand it to ``kitpy.lifecycle.grpc.serve_grpc``.
    """
    # the error handler also sees the calls GrpcServer refuses itself (while stopping)
    server = GrpcServer(reflection=reflection, error_handler=options.get("error_handler"))
    servicer = StringServicer(endpoints, **options)
    server.add_service(SERVICE, pb_grpc.add_StringServiceServicer_to_server, servicer)
    return server


async def start_grpc_server(
    endpoints: Endpoints,
    *,
    host: str = "127.0.0.1",
    port: int = 8081,
    reflection: bool = True,
    **options: Unpack[ServerOptions],
) -> tuple[GrpcServer, int]:
    """:func:`make_grpc_server`, started on ``host:port``; return it and the bound port.

    ``port=0`` picks a free port.  Stop it with ``await server.stop(grace=...)``.
    """
    server = make_grpc_server(endpoints, reflection=reflection, **options)
    return server, await server.start(f"{host}:{port}")


# -- client -------------------------------------------------------------------------


def make_grpc_client(
    channel: grpc.aio.Channel,
    *,
    before: Sequence[ClientBefore] = (),
    middleware: GenericMiddleware | None = None,
    stream_middleware: StreamMiddleware | None = None,
) -> Endpoints:
    """An ``Endpoints`` set that calls a remote stringsvc over ``channel``.

    ``before`` hooks go to every Client (e.g. trace injection, a bearer
    token); each unary endpoint is wrapped in ``middleware`` if given (e.g.
    retry), the streaming ``tokens`` in ``stream_middleware``.

    Example::

        async with grpc.aio.insecure_channel("127.0.0.1:8081") as channel:
            svc = make_grpc_client(channel)
            assert await svc.uppercase(Context().with_timeout(1.0), "hi") == "HI"
    """
    uppercase = Client(
        channel,
        SERVICE,
        "Uppercase",
        encode_uppercase_request,
        decode_uppercase_response,
        pb.UppercaseResponse,
        before=before,
    )
    count = Client(
        channel,
        SERVICE,
        "Count",
        encode_count_request,
        decode_count_response,
        pb.CountResponse,
        before=before,
    )
    tokens = StreamClient(
        channel,
        SERVICE,
        "Tokens",
        encode_tokens_request,
        decode_tokens_response,
        pb.TokensResponse,
        kind="unary_stream",
        before=before,
    )
    endpoints = Endpoints(
        uppercase_endpoint=uppercase, count_endpoint=count, tokens_endpoint=tokens
    )
    return endpoints.wrap(middleware, stream_middleware=stream_middleware)
