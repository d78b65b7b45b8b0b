"""The edge: an API gateway built from kitpy's own parts (``kitpy[gateway]``).

One entry point that routes, authenticates, limits and translates:

* :mod:`kitpy.gateway.routes` -- the route table (method + path prefix -> an
  upstream service and per-route options), read with :mod:`kitpy.config` and
  reloaded live; an invalid table is rejected and logged, the old one stays;
* :mod:`kitpy.gateway.proxy` -- HTTP -> HTTP reverse proxying to discovered
  upstream instances, bodies streamed both ways;
* :mod:`kitpy.gateway.connect` -- JSON (or binary protobuf) -> gRPC over the
  Connect protocol, for unary calls.

Work in progress (issue 21): the pieces land one by one; ``python -m
kitpy.gateway`` comes with the route table's wiring.
"""

from kitpy._extras import require

require("aiohttp", "grpc", "google.protobuf", extra="gateway")

__all__: list[str] = []
