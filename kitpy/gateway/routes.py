"""The route table: method + path prefix -> an upstream service, with per-route options.

A :class:`Route` says which requests it takes (``method``, ``prefix``), where
they go (``upstream``, ``kind``) and the edge policies that apply to them.  A
:class:`RouteTable` is an immutable, validated set of routes and
:class:`~kitpy.gateway.discovery.Upstream` s; building one checks everything
and raises :class:`RouteError` naming the route and the field at fault.
:meth:`RouteTable.match` picks the route of a request:

* the **longest prefix** wins;
* a prefix matches only **at a segment boundary**: ``/api`` matches ``/api``,
  ``/api/`` and ``/api/x``, never ``/apix`` (a trailing ``/`` in a prefix is
  dropped, so ``/api/`` is the same prefix as ``/api``);
* for the same prefix, an **exact method beats** ``"*"`` (``HEAD`` is its own
  method: a ``GET`` route does not take it).

>>> from kitpy.gateway.discovery import Upstream
>>> table = RouteTable(
...     [Route(prefix="/api", upstream="svc"), Route("GET", "/api/users", upstream="svc")],
...     [Upstream("svc", addresses=("127.0.0.1:8081",))],
... )
>>> table.match("GET", "/api/users/7").name, table.match("POST", "/api/users").name
('GET /api/users', '* /api')
>>> table.match("GET", "/apix") is None
True

Reading a table from TOML or JSON is :mod:`kitpy.gateway.route_config`;
following a file or an etcd key is :mod:`kitpy.gateway.live_routes`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal
from urllib.parse import urlsplit

from kitpy.gateway.discovery import Upstream
from kitpy.transport.http.codec import DEFAULT_MAX_BODY_SIZE

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "METHODS",
    "Route",
    "RouteError",
    "RouteTable",
]

DEFAULT_TIMEOUT = 30.0
"""Seconds a request may take when it brings no ``X-Timeout-Ms`` (``Route.timeout``)."""
DEFAULT_RETRIES = 2
"""Retries of an idempotent request after its first attempt (``Route.retries``)."""
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"})
"""The methods a route may name (or ``"*"`` for any)."""

Kind = Literal["http", "connect"]
Auth = Literal["none", "jwt"]
_KINDS: tuple[str, ...] = ("http", "connect")
_AUTHS: tuple[str, ...] = ("none", "jwt")


class RouteError(ValueError):
    """A route table that cannot be used; ``str()`` is one line naming where and what.

    ``where`` is the route (``route #2 (GET /api)``), an upstream
    (``upstream stringsvc``) or empty for the whole table; ``field`` the
    field at fault; ``source`` the file or etcd key the table came from.

    >>> str(RouteError("must be > 0 seconds, got -1", where="route #2 (api)", field="timeout"))
    'route #2 (api): timeout: must be > 0 seconds, got -1'
    """

    def __init__(self, problem: str, *, where: str = "", field: str = "", source: str = "") -> None:
        super().__init__(": ".join(p for p in (source, where, field, problem) if p))
        self.problem = problem
        self.where = where
        self.field = field
        self.source = source

    @classmethod
    def in_route(cls, number: int, name: str, field: str, problem: str) -> RouteError:
        """An error in the ``number``-th route (from 1, in table order), named ``name`` if known."""
        where = f"route #{number} ({name})" if name else f"route #{number}"
        return cls(problem, where=where, field=field)

    def from_source(self, source: str) -> RouteError:
        """The same error, saying which file or key the table came from."""
        return RouteError(self.problem, where=self.where, field=self.field, source=source)


@dataclass(frozen=True, slots=True)
class Route:
    """Requests with ``method`` whose path starts with ``prefix`` go to ``upstream``.

    Every option has a default that suits a typical JSON API; see
    docs/gateway.md for the file format.  Values are checked when a
    :class:`RouteTable` is built.

    >>> route = Route("get", "/api/", upstream="svc")
    >>> route.method, route.prefix, route.name
    ('GET', '/api', 'GET /api')
    """

    method: str = "*"
    """An HTTP method (:data:`METHODS`, any case) or ``"*"`` for every method."""
    prefix: str = "/"
    """A path prefix starting with ``/``, matched at segment boundaries."""
    upstream: str = ""
    """The name of the :class:`~kitpy.gateway.discovery.Upstream` that serves the route."""
    kind: Kind = "http"
    """``"http"``: proxy the request as it is; ``"connect"``: JSON/proto over Connect -> gRPC."""
    timeout: float = DEFAULT_TIMEOUT
    """Seconds allowed when the request brings no ``X-Timeout-Ms`` (default 30)."""
    retries: int = DEFAULT_RETRIES
    """Extra attempts for an idempotent request, within the retry budget; 0 = none."""
    strip_prefix: bool = False
    """Send the path without ``prefix`` (``/api/x`` -> ``/x``); see :meth:`upstream_path`."""
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    """The largest request body accepted, in bytes (default 1 MiB, as the HTTP transport's)."""
    auth: Auth = "none"
    """``"none"`` or ``"jwt"`` (a valid bearer token is required)."""
    rate_limit: float | None = None
    """Requests per second allowed to each client, or None for no limit."""
    cors_origins: tuple[str, ...] = ()
    """Origins allowed by CORS (``https://app.example.com`` or ``*``); empty: no CORS headers."""
    name: str = ""
    """The label of the route in logs and metrics; default ``"METHOD PREFIX"``."""

    def __post_init__(self) -> None:
        if isinstance(self.method, str):
            object.__setattr__(self, "method", self.method.upper())
        if isinstance(self.prefix, str) and len(self.prefix) > 1:
            object.__setattr__(self, "prefix", self.prefix.rstrip("/") or "/")
        object.__setattr__(self, "cors_origins", tuple(self.cors_origins))  # a list works too
        if not self.name:
            object.__setattr__(self, "name", f"{self.method} {self.prefix}")

    def upstream_path(self, path: str) -> str:
        """The path to send upstream for ``path`` (one this route matched).

        >>> Route(prefix="/api", upstream="svc", strip_prefix=True).upstream_path("/api/x")
        '/x'
        """
        if not self.strip_prefix or self.prefix == "/":
            return path
        rest = path[len(self.prefix) :]
        return rest if rest.startswith("/") else "/" + rest

    def problem(self) -> tuple[str, str] | None:
        """``(field, what is wrong)`` for the first unusable field, else None."""
        if self.method != "*" and self.method not in METHODS:
            return (
                "method",
                f"expected * or one of {', '.join(sorted(METHODS))}, got {self.method!r}",
            )
        if not isinstance(self.prefix, str) or not self.prefix.startswith("/"):
            return "prefix", f"must start with /, got {self.prefix!r}"
        if any(c in "?#" or c.isspace() for c in self.prefix) or "//" in self.prefix:
            return "prefix", f"expected a plain path such as /api/users, got {self.prefix!r}"
        if not self.upstream:
            return "upstream", "missing: name the upstream that serves this route"
        if self.kind not in _KINDS:
            return "kind", f"expected one of {', '.join(_KINDS)}, got {self.kind!r}"
        if not _positive(self.timeout):
            return "timeout", f"must be > 0 seconds, got {self.timeout!r}"
        if not _count(self.retries, minimum=0):
            return "retries", f"must be a whole number >= 0, got {self.retries!r}"
        if not _count(self.max_body_size, minimum=1):
            return "max_body_size", f"must be > 0 bytes, got {self.max_body_size!r}"
        if self.auth not in _AUTHS:
            return "auth", f"expected one of {', '.join(_AUTHS)}, got {self.auth!r}"
        if self.rate_limit is not None and not _positive(self.rate_limit):
            return "rate_limit", f"must be > 0 requests a second, got {self.rate_limit!r}"
        for origin in self.cors_origins:
            if not _origin(origin):
                return (
                    "cors_origins",
                    f"expected * or an origin such as https://app.example.com, got {origin!r}",
                )
        return None


class RouteTable:
    """An immutable, validated set of routes and the upstreams they name.

    Raises :class:`RouteError` when a route or an upstream is unusable, a
    route names an unknown upstream, two routes share a method and prefix or
    a name, or there is no route at all.
    """

    __slots__ = ("_index", "_longest", "routes", "upstreams")

    routes: tuple[Route, ...]
    upstreams: Mapping[str, Upstream]

    def __init__(self, routes: Iterable[Route], upstreams: Iterable[Upstream]) -> None:
        self.routes = tuple(routes)
        by_name: dict[str, Upstream] = {}
        for upstream in upstreams:
            where = f"upstream {upstream.name}"
            if upstream.name in by_name:
                raise RouteError("defined twice", where=where)
            problem = upstream.problem()
            if problem is not None:
                raise RouteError(problem[1], where=where, field=problem[0])
            by_name[upstream.name] = upstream
        self.upstreams = MappingProxyType(by_name)
        if not self.routes:
            raise RouteError("the table has no routes")
        self._index: dict[str, dict[str, Route]] = {}
        names: dict[str, str] = {}
        for number, route in enumerate(self.routes, 1):
            problem = route.problem()
            if problem is not None:
                raise RouteError.in_route(number, route.name, *problem)
            if route.upstream not in by_name:
                known = ", ".join(sorted(by_name)) or "none defined"
                problem = "upstream", f"no upstream named {route.upstream!r} (upstreams: {known})"
                raise RouteError.in_route(number, route.name, *problem)
            if route.name in names:
                problem = "name", f"{route.name!r} is also the name of {names[route.name]}"
                raise RouteError.in_route(number, route.name, *problem)
            names[route.name] = f"route #{number}"
            methods = self._index.setdefault(route.prefix, {})
            if route.method in methods:
                other = self.routes.index(methods[route.method]) + 1
                problem = (
                    "prefix",
                    f"{route.method} {route.prefix} is already routed by route #{other}",
                )
                raise RouteError.in_route(number, route.name, *problem)
            methods[route.method] = route
        self._longest = max(len(prefix) for prefix in self._index)

    def match(self, method: str, path: str) -> Route | None:
        """The route for a request, or None: longest prefix first, then exact method over ``*``.

        ``method`` is upper case, as aiohttp gives it; ``path`` is the path
        without the query string.  The cost is one dict lookup per path
        segment up to the longest prefix in the table.
        """
        index = self._index
        candidate = path
        if len(path) > self._longest:  # no prefix is longer: start at the last fitting boundary
            cut = path.rfind("/", 0, self._longest + 1)
            if cut < 0:
                return None
            candidate = path[:cut] or "/"
        while True:
            methods = index.get(candidate)
            if methods is not None:
                route = methods.get(method) or methods.get("*")
                if route is not None:
                    return route
            if len(candidate) <= 1:
                return None
            cut = candidate.rfind("/")
            if cut < 0:
                return None
            candidate = candidate[:cut] or "/"

    def upstream_of(self, route: Route) -> Upstream:
        """The :class:`~kitpy.gateway.discovery.Upstream` that serves ``route``."""
        return self.upstreams[route.upstream]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RouteTable):
            return NotImplemented
        return self.routes == other.routes and dict(self.upstreams) == dict(other.upstreams)

    def __hash__(self) -> int:
        return hash((self.routes, frozenset(self.upstreams.items())))

    def __repr__(self) -> str:
        return f"RouteTable({len(self.routes)} routes, upstreams: {', '.join(self.upstreams)})"


def _positive(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _count(value: object, *, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _origin(origin: object) -> bool:
    if origin == "*":
        return True
    if not isinstance(origin, str):
        return False
    parts = urlsplit(origin)
    return (
        parts.scheme in ("http", "https")
        and bool(parts.netloc)
        and not parts.path
        and not parts.query
        and not parts.fragment
    )
