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

* :mod:`kitpy.gateway.app` -- :class:`Gateway`, the parts as one aiohttp
  application: each route's handler with its edge policies
  (:mod:`~kitpy.gateway.edge`: JWT, per-client rate limits, CORS; verified
  claims forwarded as :mod:`~kitpy.gateway.claims`) and its span, metrics and
  access-log line (:mod:`~kitpy.gateway.observe`);
* ``python -m kitpy.gateway --config gateway.toml`` -- the gateway as a
  process (:mod:`kitpy.gateway.serve`, settings in :mod:`~kitpy.gateway.settings`).

Example::

    async with Gateway(LiveRouteTable(path="gateway.toml")) as gateway:
        server = await start_app(gateway.app(), host="0.0.0.0", port=8080)
"""

from kitpy._extras import require

require("aiohttp", "grpc", "google.protobuf", extra="gateway")

from kitpy.gateway.app import Gateway
from kitpy.gateway.claims import ClaimsSigner, claims_parser
from kitpy.gateway.connect import connect_handler
from kitpy.gateway.descriptors import (
    Descriptors,
    ProtoMethod,
    ReflectionDescriptors,
    StaticDescriptors,
)
from kitpy.gateway.discovery import Upstream, instancer_for
from kitpy.gateway.edge import LocalLimits, RedisLimits
from kitpy.gateway.exchange import BadGateway, Exchange
from kitpy.gateway.grpc_pool import GrpcPool
from kitpy.gateway.grpc_upstream import UnaryCall, UnaryReply, forward_headers, grpc_upstream
from kitpy.gateway.live_routes import LiveRouteTable
from kitpy.gateway.observe import RouteObserver, gateway_instruments
from kitpy.gateway.proxy import reverse_proxy
from kitpy.gateway.route_config import load_routes, parse_routes
from kitpy.gateway.routes import Route, RouteError, RouteTable
from kitpy.gateway.upstream import UpstreamPool, upstream_session

__all__: list[str] = [
    "BadGateway",
    "ClaimsSigner",
    "Descriptors",
    "Exchange",
    "Gateway",
    "GrpcPool",
    "LiveRouteTable",
    "LocalLimits",
    "ProtoMethod",
    "RedisLimits",
    "ReflectionDescriptors",
    "Route",
    "RouteError",
    "RouteObserver",
    "RouteTable",
    "StaticDescriptors",
    "UnaryCall",
    "UnaryReply",
    "Upstream",
    "UpstreamPool",
    "claims_parser",
    "connect_handler",
    "forward_headers",
    "gateway_instruments",
    "grpc_upstream",
    "instancer_for",
    "load_routes",
    "parse_routes",
    "reverse_proxy",
    "upstream_session",
]
