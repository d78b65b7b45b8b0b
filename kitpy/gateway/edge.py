"""Edge policies of a route: JWT verification, per-client rate limits, CORS.

What a :class:`~kitpy.gateway.routes.Route` asks for (``auth``,
``rate_limit``, ``cors_origins``) becomes, here, hooks of the handler that
serves it; :class:`~kitpy.gateway.app.Gateway` wires them.  In order:

1. :func:`client_to_context` (a ``before`` func) notes who the caller is --
   its address -- and :func:`~kitpy.auth.http_to_context` its bearer token;
2. :func:`route_authenticate` (an ``authenticate`` hook, awaited before the
   body is read) verifies the token on ``auth = "jwt"`` routes (401
   ``UNAUTHENTICATED`` otherwise), signs the verified claims for the upstream
   (:mod:`kitpy.gateway.claims`), then applies the route's rate limit to the
   caller -- its ``sub`` claim when it has one, else its address -- (429
   ``RESOURCE_EXHAUSTED`` with ``Retry-After``);
3. :func:`send_claims` (a ``client_before`` func) puts the signed claims in
   ``X-Gateway-Claims``;
4. CORS: :func:`preflight` answers a browser's preflight ``OPTIONS`` for a
   route with ``cors_origins``, and :func:`cors_origin` / :func:`add_cors_headers`
   mark the actual answer.

Rate limits count per route and per caller, in this process
(:class:`LocalLimits`, token buckets) or across every gateway process
(:class:`RedisLimits`, the ``limits`` library's moving window in Redis).
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from kitpy.auth.jwt import JWTParser
from kitpy.context import Authenticate, Context, Key
from kitpy.errors import PermissionDenied, RateLimited
from kitpy.gateway.claims import ClaimsSigner
from kitpy.gateway.headers import CLAIMS_HEADER
from kitpy.gateway.routes import Route
from kitpy.ratelimit.bucket import KeyedTokenBuckets

if TYPE_CHECKING:
    from multidict import CIMultiDict

    from kitpy.ratelimit.distributed import RedisRateLimiter

__all__ = [
    "CLIENT",
    "CORS_ORIGIN",
    "FORWARDED_CLAIMS",
    "PREFLIGHT_MAX_AGE",
    "ClientLimits",
    "LocalLimits",
    "RedisLimits",
    "add_cors_headers",
    "client_to_context",
    "cors_origin",
    "is_preflight",
    "mark_cors",
    "preflight",
    "route_authenticate",
    "send_claims",
]

CLIENT: Key[str] = Key("gateway.client")
"""Who the caller is, for rate limits: ``addr:<address>``, or ``sub:<subject>`` once verified."""
FORWARDED_CLAIMS: Key[str] = Key("gateway.forwarded_claims")
"""The gateway's signed token of the verified claims, for the upstream."""
PREFLIGHT_MAX_AGE = 600
"""Seconds a browser may cache a preflight's answer."""


def client_to_context(ctx: Context, request: web.Request) -> Context:
    """A ``before`` func: note the caller's address under :data:`CLIENT`."""
    return ctx.with_value(CLIENT, "addr:" + (request.remote or ""))


def send_claims(ctx: Context, headers: CIMultiDict[str]) -> Context:
    """A ``client_before`` func: the signed claims, if any, in ``X-Gateway-Claims``."""
    token = ctx.get(FORWARDED_CLAIMS)
    if token is not None:
        headers[CLAIMS_HEADER] = token
    return ctx


# -- rate limits -----------------------------------------------------------------------


class ClientLimits(Protocol):
    """Per-route, per-caller rate limits: whether ``client`` may make one more request."""

    def allow(self, route: Route, client: str) -> bool | Awaitable[bool]: ...


class LocalLimits:
    """Rate limits kept in this process: a token bucket per route and caller.

    A route allows ``rate_limit`` requests a second to each caller, with a
    burst of one second's worth (at least 1).  At most ``max_clients`` callers
    are remembered per route (least recently seen forgotten first).  A
    reloaded table that changes a route's rate starts its buckets afresh.

    >>> limits = LocalLimits()
    >>> route = Route(prefix="/api", upstream="svc", rate_limit=2)
    >>> [limits.allow(route, "addr:10.0.0.1") for _ in range(3)]
    [True, True, False]
    >>> limits.allow(route, "addr:10.0.0.2")
    True
    """

    __slots__ = ("_buckets", "_max_clients")

    def __init__(self, *, max_clients: int = 10_000) -> None:
        self._max_clients = max_clients
        self._buckets: dict[tuple[str, float], KeyedTokenBuckets] = {}

    def allow(self, route: Route, client: str) -> bool:
        """Take one request from ``client``'s bucket for ``route``; False when it is empty."""
        rate = route.rate_limit
        if rate is None:
            return True
        buckets = self._buckets.get((route.name, rate))
        if buckets is None:
            self._forget(route.name)
            buckets = KeyedTokenBuckets(rate, max(1, math.ceil(rate)), max_keys=self._max_clients)
            self._buckets[(route.name, rate)] = buckets
        return buckets.allow(client)

    def _forget(self, name: str) -> None:
        for key in [key for key in self._buckets if key[0] == name]:
            del self._buckets[key]


class RedisLimits:
    """Rate limits shared by every gateway process through Redis (``kitpy[redis]``).

    One :class:`~kitpy.ratelimit.distributed.RedisRateLimiter` per route (the
    ``limits`` library's moving window), keyed by caller.  A rate below one a
    second becomes one per ``round(1 / rate)`` seconds; above, ``round(rate)``
    a second.  ``fail_open`` (default True) admits requests while Redis is
    unreachable -- at the edge, an outage of the limiter should not become an
    outage of every route; pass False to refuse them instead (429, as
    over the limit).

    Example::

        limits = RedisLimits("redis://127.0.0.1:6379/0")
        ...
        await limits.close()
    """

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "kitpy-gateway",
        fail_open: bool = True,
        timeout: float = 0.5,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        from kitpy.ratelimit.distributed import RedisRateLimiter  # needs kitpy[redis]

        self._make = RedisRateLimiter.from_url
        self._url = url
        self._namespace = namespace
        self._fail_open = fail_open
        self._timeout = timeout
        self._on_error = on_error
        self._limiters: dict[tuple[str, float], RedisRateLimiter] = {}

    async def allow(self, route: Route, client: str) -> bool:
        """Count one request from ``client`` on ``route`` in Redis; False past the limit."""
        rate = route.rate_limit
        if rate is None:
            return True
        limiter = self._limiters.get((route.name, rate))
        if limiter is None:
            limiter = self._limiters[(route.name, rate)] = self._make(
                self._url,
                _per_period(rate),
                namespace=f"{self._namespace}:{route.name}",
                fail_open=self._fail_open,
                timeout=self._timeout,
                on_error=self._on_error,
            )
        return await limiter.allow(client)

    async def close(self) -> None:
        """Close the Redis connections."""
        limiters, self._limiters = self._limiters, {}
        for limiter in limiters.values():
            await limiter.aclose()


def _per_period(rate: float) -> str:
    """``rate`` requests a second as a ``limits`` string: ``"50/second"``, ``"1/2 seconds"``."""
    if rate >= 1:
        return f"{round(rate)}/second"
    return f"1/{max(1, round(1 / rate))} seconds"


# -- authentication and limits, as one hook --------------------------------------------


def route_authenticate(
    route: Route,
    *,
    parser: JWTParser[Any] | None,
    limits: ClientLimits,
    signer: ClaimsSigner | None = None,
) -> Authenticate | None:
    """The ``authenticate`` hook of ``route``'s handler, or None when it has nothing to do.

    Verifies the bearer token (``auth = "jwt"``), signs the verified claims for
    the upstream (with ``signer``, audience = the route's upstream), then takes
    one request from the caller's rate limit.  Raises ``ValueError`` when the
    route needs JWT verification and ``parser`` is None (a table the gateway
    cannot serve is rejected, not served unprotected).
    """
    verify = route.auth == "jwt"
    if verify and parser is None:
        raise ValueError(
            f"route {route.name!r} has auth = 'jwt' but the gateway has no JWT key configured"
        )
    if not verify and route.rate_limit is None:
        return None
    audience = route.upstream
    rate = route.rate_limit or 1.0  # only read when the route has a limit
    message = f"rate limit of {rate:g} requests a second exceeded"
    retry_after = {"Retry-After": str(max(1, math.ceil(1 / rate)))}

    async def authenticate(ctx: Context) -> Context:
        client = ctx.get(CLIENT) or ""
        if parser is not None and verify:
            ctx = await parser.authenticate(ctx)
            claims = ctx[parser.claims_key]
            if isinstance(claims, Mapping):
                subject = claims.get("sub")
                if isinstance(subject, str) and subject:
                    client = "sub:" + subject
                if signer is not None:
                    ctx = ctx.with_value(FORWARDED_CLAIMS, signer.sign(claims, audience=audience))
        if route.rate_limit is not None:
            allowed = limits.allow(route, client)
            if not isinstance(allowed, bool):
                allowed = await allowed
            if not allowed:
                raise RateLimited(message, headers=retry_after)
        return ctx

    return authenticate


# -- CORS ------------------------------------------------------------------------------

_HEADER_LIST = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$")
_EXPOSED = "X-Request-Id, Retry-After"


def is_preflight(request: web.Request) -> bool:
    """Whether ``request`` is a CORS preflight (``OPTIONS`` with ``Origin`` and
    ``Access-Control-Request-Method``)."""
    headers = request.headers
    return (
        request.method == "OPTIONS"
        and "Origin" in headers
        and "Access-Control-Request-Method" in headers
    )


def cors_origin(route: Route, origin: str | None) -> str | None:
    """The ``Access-Control-Allow-Origin`` value for a request from ``origin``, or None.

    >>> route = Route(prefix="/", upstream="svc", cors_origins=("https://app.example.com",))
    >>> cors_origin(route, "https://app.example.com"), cors_origin(route, "https://evil.example")
    ('https://app.example.com', None)
    """
    if origin is None or not route.cors_origins:
        return None
    if origin in route.cors_origins:
        return origin
    return "*" if "*" in route.cors_origins else None


def add_cors_headers(headers: CIMultiDict[str], origin: str) -> None:
    """Mark an answer as readable by ``origin`` (``Access-Control-Allow-Origin``, ``Vary``)."""
    headers["Access-Control-Allow-Origin"] = origin
    headers["Access-Control-Expose-Headers"] = _EXPOSED
    if origin != "*":
        headers.add("Vary", "Origin")


CORS_ORIGIN = web.RequestKey("kitpy.gateway.cors", str)
"""The ``Access-Control-Allow-Origin`` of a request's answer, set by the gateway when its
route allows the request's ``Origin``; absent otherwise."""


def mark_cors(request: web.Request, response: web.StreamResponse) -> None:
    """Add the CORS headers to ``response`` (not yet prepared) when ``request`` has a
    :data:`CORS_ORIGIN`.  The gateway calls it where an answer is made, rather than in an
    ``on_response_prepare`` signal that would cost every answer two coroutines."""
    origin = request.get(CORS_ORIGIN)
    if origin is not None:
        add_cors_headers(response.headers, origin)


def preflight(route: Route, request: web.Request) -> web.Response:
    """The answer to a preflight for ``route``: 204 with what is allowed, or 403.

    The allowed method is the route's (the requested one for a ``*`` route),
    the allowed headers those requested when they are well-formed header
    names; the answer may be cached for :data:`PREFLIGHT_MAX_AGE` seconds.
    """
    origin = cors_origin(route, request.headers.get("Origin"))
    if origin is None:
        raise PermissionDenied(f"origin {request.headers.get('Origin', '')[:100]!r} is not allowed")
    method = request.headers.get("Access-Control-Request-Method", "").strip().upper()
    response = web.Response(status=204)
    headers = response.headers
    headers["Access-Control-Allow-Origin"] = origin
    headers["Access-Control-Allow-Methods"] = method if route.method == "*" else route.method
    asked = request.headers.get("Access-Control-Request-Headers", "").strip()
    if asked and len(asked) <= 1000 and _HEADER_LIST.match(asked):
        headers["Access-Control-Allow-Headers"] = asked
    headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
    if origin != "*":
        headers["Vary"] = "Origin"
    return response
