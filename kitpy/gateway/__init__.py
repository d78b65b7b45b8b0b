"""The edge: an API gateway built from kitpy's own parts (``kitpy[gateway]``).

One entry point that routes, authenticates, limits and translates:

* :mod:`kitpy.gateway.routes` -- the route table (method + path prefix -> an
  upstream service and per-route options), read from TOML or JSON by
  :mod:`~kitpy.gateway.route_config` and reloaded live from a file or an etcd
  key by :mod:`~kitpy.gateway.live_routes`; an invalid table is rejected and
  logged, the old one stays.  :mod:`~kitpy.gateway.discovery` says where an
  upstream's instances come from;
* :mod:`kitpy.gateway.proxy` -- HTTP -> HTTP reverse proxying to discovered
  upstream instances, bodies streamed both ways;
* :mod:`kitpy.gateway.connect` -- JSON (or binary protobuf) -> gRPC over the
  Connect protocol, for unary calls, with the message types from
  :mod:`kitpy.gateway.descriptors` (generated modules, a descriptor set, or
  the upstream's server reflection).

Work in progress (issue 21): the pieces land one by one; ``python -m
kitpy.gateway`` comes with the route table's wiring.
"""

from kitpy._extras import require

require("aiohttp", "grpc", "google.protobuf", extra="gateway")

from kitpy.gateway.connect import connect_handler
from kitpy.gateway.descriptors import (
    Descriptors,
    ProtoMethod,
    ReflectionDescriptors,
    StaticDescriptors,
)
from kitpy.gateway.discovery import Upstream, instancer_for
from kitpy.gateway.exchange import BadGateway, Exchange
from kitpy.gateway.grpc_upstream import UnaryCall, UnaryReply, forward_headers, grpc_upstream
from kitpy.gateway.live_routes import LiveRouteTable
from kitpy.gateway.proxy import reverse_proxy
from kitpy.gateway.route_config import load_routes, parse_routes
from kitpy.gateway.routes import Route, RouteError, RouteTable
from kitpy.gateway.upstream import UpstreamPool, upstream_session

__all__: list[str] = [
    "BadGateway",
    "Descriptors",
    "Exchange",
    "LiveRouteTable",
    "ProtoMethod",
    "ReflectionDescriptors",
    "Route",
    "RouteError",
    "RouteTable",
    "StaticDescriptors",
    "UnaryCall",
    "UnaryReply",
    "Upstream",
    "UpstreamPool",
    "connect_handler",
    "forward_headers",
    "grpc_upstream",
    "instancer_for",
    "load_routes",
    "parse_routes",
    "reverse_proxy",
    "upstream_session",
]
