"""A kitpy gRPC Server with the tracing hooks, on 127.0.0.1 port 0, for the tracing tests.

One unary method, ``/kitpy.test.Echo/Say``, bytes in and out (UTF-8 text to the endpoint).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from opentelemetry.trace import Tracer

from kitpy import Context, Endpoint
from kitpy.tracing import grpc_server_before, grpc_server_finalizer
from kitpy.transport import grpc as kgrpc

__all__ = ["FULL_METHOD", "SERVICE", "data", "serve_traced", "text"]

SERVICE = "kitpy.test.Echo"
FULL_METHOD = f"/{SERVICE}/Say"


def text(ctx: Context, message: bytes) -> str:
    return message.decode()


def data(ctx: Context, value: str) -> bytes:
    return value.encode()


@asynccontextmanager
async def serve_traced(tracer: Tracer, endpoint: Endpoint[str, str]) -> AsyncIterator[str]:
    """Serve ``endpoint`` as Say behind the gRPC tracing hooks; yield ``host:port``."""
    server = kgrpc.Server(
        endpoint,
        text,
        data,
        method=FULL_METHOD,
        before=[grpc_server_before(tracer)],
        finalizer=[grpc_server_finalizer()],
    )

    async def handle(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return await server(request, context)  # what a generated servicer method does

    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Say": grpc.unary_unary_rpc_method_handler(handle)}
    )
    grpc_server = grpc.aio.server()
    grpc_server.add_generic_rpc_handlers((handler,))
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    await grpc_server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await grpc_server.stop(None)
