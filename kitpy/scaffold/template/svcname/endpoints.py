"""svcname's endpoints: one per service method, plus request/response types.

``make_endpoints(svc)`` turns a service into an :class:`Endpoints` set; the set
implements :class:`~.service.Service` again by calling its endpoints with the
Context it is given, so the same class is the server-side bundle and, with
client endpoints inside, a client library::

    eps = make_endpoints(BasicService())
    await eps.hello(Context().with_timeout(1.0), "Ada")      # "Hello, Ada!"

Each endpoint carries its operation name (``named("hello")``), so logs, metrics
and spans name it whatever middleware is stacked on it.

The request and response types are frozen ``msgspec.Struct`` classes: typed and
immutable like frozen dataclasses, but cheaper to build (in C).  A dataclass
works too.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
from kitpy import Context, Endpoint, GenericMiddleware, named

from .service import Service

__all__ = ["Endpoints", "HelloRequest", "HelloResponse", "make_endpoints", "make_hello_endpoint"]


class HelloRequest(msgspec.Struct, frozen=True):
    name: str


class HelloResponse(msgspec.Struct, frozen=True):
    message: str


def make_hello_endpoint(svc: Service) -> Endpoint[HelloRequest, HelloResponse]:
    """Wrap ``svc.hello`` as the endpoint named ``hello``."""

    @named("hello")
    async def hello(ctx: Context, request: HelloRequest) -> HelloResponse:
        return HelloResponse(message=await svc.hello(ctx, request.name))

    return hello


@dataclass(frozen=True, slots=True)
class Endpoints:
    """All of svcname's endpoints; also a ``Service`` that calls them."""

    hello_endpoint: Endpoint[HelloRequest, HelloResponse]

    async def hello(self, ctx: Context, name: str) -> str:
        return (await self.hello_endpoint(ctx, HelloRequest(name=name))).message

    def wrap(self, middleware: GenericMiddleware) -> Endpoints:
        """This set with ``middleware`` around each endpoint."""
        return Endpoints(hello_endpoint=middleware(self.hello_endpoint))


def make_endpoints(svc: Service, *, middleware: GenericMiddleware | None = None) -> Endpoints:
    """Build the server-side endpoints for ``svc``, each wrapped in ``middleware`` if given."""
    endpoints = Endpoints(hello_endpoint=make_hello_endpoint(svc))
    return endpoints if middleware is None else endpoints.wrap(middleware)
