"""The gateway as one aiohttp application: route table -> edge policies -> upstream handlers.

:class:`Gateway` puts the parts of :mod:`kitpy.gateway` together.  Per
request it matches the route table (one dictionary lookup per path segment),
answers a CORS preflight itself, and hands the request to the route's
handler: a :func:`~kitpy.gateway.reverse_proxy` over the upstream's
:class:`~kitpy.gateway.UpstreamPool` (``kind = "http"``) or a
:func:`~kitpy.gateway.connect_handler` over its
:class:`~kitpy.gateway.grpc_pool.GrpcPool` (``kind = "connect"``), each with
the route's timeout, retries, body limit, edge policies
(:mod:`~kitpy.gateway.edge`) and observation hooks
(:mod:`~kitpy.gateway.observe`).  A request no route takes is a 404 with a
JSON error body.

Handlers and pools are built when a table is installed: at :meth:`Gateway.start`
and, with a :class:`~kitpy.gateway.LiveRouteTable`, at each reload.  A pool
whose upstream definition did not change is kept (its instances, breakers,
P2C load and connections carry over); one whose upstream left the table or
changed is closed after the swap.  A table the gateway cannot serve -- a
route with ``auth = "jwt"`` and no JWT key, a descriptor set that does not
load -- is rejected like an invalid one, and the old table stays.

Example::

    gateway = Gateway(LiveRouteTable(path="gateway.toml"), etcd=etcd)
    async with gateway:
        server = await start_app(gateway.app(), host="0.0.0.0", port=8080)
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import grpc.aio
from aiohttp import web

from kitpy.auth.bearer import http_to_context
from kitpy.auth.jwt import JWTParser
from kitpy.circuitbreaker import Breaker
from kitpy.context import REQUEST_ID, Authenticate, Context
from kitpy.errors import KitError, NotFound
from kitpy.sd import Instance, Instancer
from kitpy.transport.http.errors import default_error_encoder
from kitpy.transport.http.keys import REQUEST_ID_HEADER, incoming_request_id
from kitpy.transport.http.routes import Handler
from kitpy.transport.http.types import ServerBefore

from .claims import CLAIMS_METADATA, ClaimsSigner
from .connect import connect_handler
from .descriptors import Descriptors, StaticDescriptors
from .discovery import Upstream, instancer_for
from .edge import (
    CORS_ORIGIN,
    FORWARDED_CLAIMS,
    ClientLimits,
    LocalLimits,
    add_cors_headers,
    client_to_context,
    cors_origin,
    is_preflight,
    preflight,
    route_authenticate,
    send_claims,
)
from .grpc_pool import GrpcPool, insecure_channel
from .grpc_upstream import RequestMetadata, forward_headers
from .live_routes import LiveRouteTable
from .observe import Hooks, RouteObserver
from .proxy import reverse_proxy
from .routes import Route, RouteTable
from .upstream import UpstreamPool, default_breaker, upstream_session

if TYPE_CHECKING:
    import dns.asyncresolver

    from kitpy.sd.etcd import EtcdClient

__all__ = ["UNROUTED", "Gateway"]

UNROUTED = Route(prefix="/", upstream="-", name="(no route)")
"""The route requests no route takes are logged, counted and traced under (answered 404)."""

_log = logging.getLogger("kitpy.gateway")


@dataclass(frozen=True, slots=True)
class _Installed:
    """A table and the handler of each of its routes."""

    table: RouteTable
    handlers: Mapping[str, Handler]  # by route name (unique; a str hashes once)


@dataclass(slots=True)
class _Pools:
    """The upstream pools of an installed table, by upstream name, with their definitions."""

    http: dict[str, tuple[Upstream, UpstreamPool]] = field(default_factory=dict)
    grpc: dict[str, tuple[Upstream, GrpcPool]] = field(default_factory=dict)

    def all(self) -> Iterable[UpstreamPool | GrpcPool]:
        yield from (pool for _, pool in self.http.values())
        yield from (pool for _, pool in self.grpc.values())


class Gateway:
    """An API gateway over a route table (fixed, or live from a file and etcd).

    ``routes`` is a :class:`~kitpy.gateway.RouteTable` or a
    :class:`~kitpy.gateway.LiveRouteTable` (started and closed with the
    gateway).  The rest is what the routes need, all made by the application:

    * ``session`` -- the upstream HTTP session (default: one from
      :func:`~kitpy.gateway.upstream_session`, closed with the gateway);
    * ``etcd`` / ``resolver`` -- for upstreams found in etcd / by DNS SRV;
    * ``jwt`` -- verifies callers' tokens on ``auth = "jwt"`` routes;
      ``claims`` signs the verified claims for the upstream
      (:mod:`kitpy.gateway.claims`);
    * ``limits`` -- per-client rate limits (default :class:`~kitpy.gateway.edge.LocalLimits`;
      :class:`~kitpy.gateway.edge.RedisLimits` to share them between gateways);
    * ``observer`` -- access log, metrics and spans per route;
    * ``descriptors`` -- message types per upstream name for Connect routes
      (default: the upstream's ``descriptor_set``, else its server reflection);
    * ``channel`` -- opens a gRPC channel to an address; ``breaker`` makes each
      instance's circuit breaker.
    """

    def __init__(
        self,
        routes: RouteTable | LiveRouteTable,
        *,
        session: aiohttp.ClientSession | None = None,
        etcd: EtcdClient | None = None,
        resolver: dns.asyncresolver.Resolver | None = None,
        jwt: JWTParser[Any] | None = None,
        claims: ClaimsSigner | None = None,
        limits: ClientLimits | None = None,
        observer: RouteObserver | None = None,
        descriptors: Mapping[str, Descriptors] | None = None,
        channel: Callable[[str], grpc.aio.Channel] = insecure_channel,
        breaker: Callable[[str, Instance], Breaker] = default_breaker,
    ) -> None:
        self._live = routes if isinstance(routes, LiveRouteTable) else None
        self._first = routes.current if isinstance(routes, LiveRouteTable) else routes
        self._session = session
        self._own_session = session is None
        self._etcd = etcd
        self._resolver = resolver
        self._jwt = jwt
        self._claims = claims
        self._limits = LocalLimits() if limits is None else limits
        self._observer = RouteObserver() if observer is None else observer
        self._unrouted_hooks = self._observer.hooks(UNROUTED)
        self._descriptors = dict(descriptors or {})
        self._channel = channel
        self._breaker = breaker
        self._pools = _Pools()
        self._installed: _Installed | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        self._id_prefix = os.urandom(6).hex() + "-"

    # -- serving ---------------------------------------------------------------------

    @property
    def table(self) -> RouteTable:
        """The route table requests are matched against now."""
        return self._ready().table

    def app(self, **options: Any) -> web.Application:
        """An aiohttp application serving every path through :meth:`handle`.

        ``options`` go to ``web.Application`` (keep its default
        ``auto_decompress``; request bodies stream, so ``client_max_size``
        does not apply -- each route's ``max_body_size`` does).
        """
        app = web.Application(**options)
        app.router.add_route("*", "/{path:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Serve one request: the matching route's handler, a CORS preflight, or 404."""
        installed = self._ready()
        if is_preflight(request):
            asked = request.headers["Access-Control-Request-Method"].strip().upper()
            route = installed.table.match(asked, request.path)
            if route is not None and route.cors_origins:
                try:
                    return self._with_id(request, preflight(route, request))
                except KitError as exc:  # an origin the route does not allow: 403
                    return self._with_id(request, default_error_encoder(Context(), exc))
        route = installed.table.match(request.method, request.path)
        if route is None:
            return self._unrouted(request)
        handler = installed.handlers[route.name]
        origin = cors_origin(route, request.headers.get("Origin")) if route.cors_origins else None
        if origin is None:  # no CORS route, or an origin it does not list
            return await handler(request)
        request[CORS_ORIGIN] = origin  # a relayed answer gets the headers as it is made
        response = await handler(request)
        if not response.prepared:  # an answer of the gateway's own, or a Connect reply
            add_cors_headers(response.headers, origin)
        return response

    def _request_id(self, request: web.Request) -> str:
        """The caller's request id, or a new one."""
        return incoming_request_id(request.headers) or f"{self._id_prefix}{next(self._ids)}"

    def _with_id(self, request: web.Request, response: web.Response) -> web.Response:
        """``response`` with the request id in ``X-Request-Id``."""
        response.headers[REQUEST_ID_HEADER] = self._request_id(request)
        return response

    def _unrouted(self, request: web.Request) -> web.Response:
        """The 404 for a request no route takes, recorded under the route name ``(no route)``."""
        ctx = Context().with_value(REQUEST_ID, self._request_id(request))
        hooks = self._unrouted_hooks
        for before in hooks.before:
            ctx = before(ctx, request)
        error = NotFound(f"no route for {request.method[:20]} {request.path[:200]}")
        response = default_error_encoder(ctx, error)
        response.headers[REQUEST_ID_HEADER] = ctx[REQUEST_ID]
        for finalize in hooks.finalizer:
            finalize(ctx, response.status, response.content_length or 0)
        return response

    def _ready(self) -> _Installed:
        if self._installed is None:
            raise RuntimeError("the gateway is not started: use `async with gateway:`")
        return self._installed

    # -- installing tables -----------------------------------------------------------

    def _install(self, table: RouteTable) -> None:
        """Build the handlers of ``table`` and swap them in; ``ValueError`` refuses it."""
        # what can refuse the table comes first, so that a refused table changes nothing
        authenticate = {route.name: self._authenticate(route) for route in table.routes}
        descriptors = {
            route.upstream: self._descriptors_of(table.upstream_of(route))
            for route in table.routes
            if route.kind == "connect"
        }
        old = self._pools
        pools = _Pools()
        handlers: dict[str, Handler] = {}
        for route in table.routes:
            upstream = table.upstream_of(route)
            auth = authenticate[route.name]
            if route.kind == "http":
                http_pool = self._http_pool(upstream, old, pools)
                handlers[route.name] = self._http_handler(route, http_pool, auth)
            else:
                grpc_pool = self._grpc_pool(upstream, old, pools, descriptors[upstream.name])
                handlers[route.name] = self._connect_handler(route, grpc_pool, auth)
        self._pools = pools
        self._installed = _Installed(table, handlers)
        kept = {id(pool) for pool in pools.all()}
        for pool in old.all():
            if id(pool) not in kept:
                self._close_later(pool)

    def _http_pool(self, upstream: Upstream, old: _Pools, new: _Pools) -> UpstreamPool:
        found = new.http.get(upstream.name) or old.http.get(upstream.name)
        if found is not None and found[0] == upstream:
            pool = found[1]
        else:
            session = self._session
            assert session is not None  # made in start()
            pool = UpstreamPool(
                self._instancer(upstream), session, name=upstream.name, breaker=self._breaker
            )
            pool.start()
        new.http[upstream.name] = (upstream, pool)
        return pool

    def _grpc_pool(
        self, upstream: Upstream, old: _Pools, new: _Pools, descriptors: Descriptors | None
    ) -> GrpcPool:
        found = new.grpc.get(upstream.name) or old.grpc.get(upstream.name)
        if found is not None and found[0] == upstream:
            pool = found[1]
        else:
            pool = GrpcPool(
                self._instancer(upstream),
                name=upstream.name,
                address_key=upstream.grpc_address_key,
                channel=self._channel,
                breaker=self._breaker,
                descriptors=descriptors,
            )
            pool.start()
        new.grpc[upstream.name] = (upstream, pool)
        return pool

    def _instancer(self, upstream: Upstream) -> Instancer:
        return instancer_for(upstream, etcd=self._etcd, resolver=self._resolver)

    def _descriptors_of(self, upstream: Upstream) -> Descriptors | None:
        given = self._descriptors.get(upstream.name)
        if given is not None:
            return given
        if upstream.descriptor_set:
            try:
                return StaticDescriptors.from_descriptor_set(upstream.descriptor_set)
            except (OSError, ValueError) as exc:
                raise ValueError(
                    f"upstream {upstream.name}: descriptor_set {upstream.descriptor_set!r} "
                    f"cannot be used: {exc}"
                ) from None
        return None  # the pool reads the instances' server reflection

    def _authenticate(self, route: Route) -> Authenticate | None:
        """The route's JWT and rate-limit hook; ``ValueError`` when the gateway cannot give it."""
        return route_authenticate(route, parser=self._jwt, limits=self._limits, signer=self._claims)

    def _before(self, route: Route, hooks: Hooks) -> tuple[ServerBefore, ...]:
        edge: tuple[ServerBefore, ...] = ()
        if route.rate_limit is not None:  # who the caller is, for its limit
            edge = (client_to_context,)
        if route.auth == "jwt":
            edge = (*edge, http_to_context)
        return (*hooks.before, *edge)

    def _http_handler(
        self, route: Route, pool: UpstreamPool, authenticate: Authenticate | None
    ) -> Handler:
        hooks = self._observer.hooks(route)
        client_before = hooks.client_before
        if route.auth == "jwt" and self._claims is not None:
            client_before = (*client_before, send_claims)
        return reverse_proxy(
            pool,
            timeout=route.timeout,
            retries=route.retries,
            strip_prefix=route.prefix if route.strip_prefix and route.prefix != "/" else "",
            max_body_size=int(route.max_body_size),  # a Size prints as 64KiB
            before=self._before(route, hooks),
            authenticate=authenticate,
            client_before=client_before,
            finalizer=hooks.finalizer,
        )

    def _connect_handler(
        self, route: Route, pool: GrpcPool, authenticate: Authenticate | None
    ) -> Handler:
        hooks = self._observer.hooks(route)
        server = connect_handler(
            pool.endpoint(retries=route.retries),
            pool.descriptors,
            timeout=route.timeout,
            max_body_size=int(route.max_body_size),  # a Size prints as 64KiB
            metadata=_metadata(hooks),
            before=self._before(route, hooks),
            finalizer=hooks.finalizer,
            authenticate=authenticate,
        )
        return server

    def _close_later(self, pool: UpstreamPool | GrpcPool) -> None:
        task = asyncio.get_running_loop().create_task(pool.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _refuse_or_install(self, table: RouteTable) -> None:
        try:
            self._install(table)
        except ValueError:
            raise
        except Exception as exc:  # a bug: the table is refused, never half-installed
            _log.exception("installing route table %r failed", table)
            raise ValueError(f"the gateway could not install the table: {exc}") from exc

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Build the first table's handlers and start following the live table."""
        if self._installed is not None:
            return
        if self._session is None:
            self._session = upstream_session()
        live = self._live
        try:
            self._install(live.current if live is not None else self._first)
        except Exception:  # refused: nothing was built, but the session we made is open
            if self._own_session and self._session is not None:
                await self._session.close()
                self._session = None
            raise
        if live is not None:
            self._unsubscribe = live.subscribe(self._refuse_or_install)
            await live.start()

    async def close(self) -> None:
        """Stop following the table, close every pool, and the session if the gateway made it."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._live is not None:
            await self._live.close()
        pools, self._pools = self._pools, _Pools()
        await asyncio.gather(*(pool.close() for pool in pools.all()), *self._closing)
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "not started" if self._installed is None else repr(self._installed.table)
        return f"Gateway({state})"


def _metadata(hooks: Hooks) -> RequestMetadata:
    """A Connect route's upstream metadata: the request id, the trace context, the claims."""
    base = forward_headers()
    trace = hooks.metadata

    def metadata(ctx: Context, request: web.Request) -> Iterable[tuple[str, str | bytes]]:
        pairs = base(ctx, request)
        token = ctx.get(FORWARDED_CLAIMS)
        if trace is None and token is None:
            return pairs  # the request id alone: nothing to add, no copy
        extended = list(pairs)
        if trace is not None:
            extended.extend(trace(ctx))
        if token is not None:
            extended.append((CLAIMS_METADATA, token))
        return extended

    return metadata
