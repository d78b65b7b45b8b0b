"""svcname's endpoints: one per service method, plus request/response types.

``make_endpoints(svc)`` turns a service into an :class:`Endpoints` set; the set
implements :class:`~.service.Service` again by calling its endpoints, so the
same class is the server-side bundle and, with client endpoints inside, a
client library.

The request and response types are frozen ``msgspec.Struct`` classes: typed and
immutable like frozen dataclasses, but cheaper to build (in C).  A dataclass
works too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec
from kitpy import Context, Endpoint, GenericMiddleware

from .service import Service

__all__ = ["Endpoints", "HelloRequest", "HelloResponse", "make_endpoints", "make_hello_endpoint"]


class HelloRequest(msgspec.Struct, frozen=True):
    name: str


class HelloResponse(msgspec.Struct, frozen=True):
    message: str


def make_hello_endpoint(svc: Service) -> Endpoint[HelloRequest, HelloResponse]:
    """Wrap ``svc.hello`` as an endpoint."""

    async def hello(ctx: Context, request: HelloRequest) -> HelloResponse:
        return HelloResponse(message=await svc.hello(request.name))

    return hello


@dataclass(frozen=True, slots=True)
class Endpoints:
    """All of svcname's endpoints; also a ``Service`` that calls them.

    ``ctx`` is the Context the service methods pass to the endpoints (a client
    sets a deadline there).
    """

    hello_endpoint: Endpoint[HelloRequest, HelloResponse]
    ctx: Context = field(default_factory=Context)

    async def hello(self, name: str) -> str:
        return (await self.hello_endpoint(self.ctx, HelloRequest(name=name))).message


def make_endpoints(svc: Service, *, middleware: GenericMiddleware | None = None) -> Endpoints:
    """Build the server-side endpoints for ``svc``, each wrapped in ``middleware`` if given."""
    hello = make_hello_endpoint(svc)
    if middleware is not None:
        hello = middleware(hello)
    return Endpoints(hello_endpoint=hello)
