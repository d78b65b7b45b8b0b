"""The instances of one upstream service: a P2C balancer over them, a circuit breaker each.

:class:`UpstreamPool` follows an :class:`~kitpy.sd.Instancer` through an
:class:`~kitpy.sd.Endpointer` whose factory builds, per instance, an endpoint
that forwards one :class:`~kitpy.gateway.Exchange` to that instance and
streams the answer back to the caller; a :class:`~kitpy.sd.P2C` balancer
picks among them.  The endpoint covers the whole exchange, answer body
included, so P2C's load (requests in flight) counts a long download for as
long as it runs.

Each instance has its own circuit breaker.  The endpoint asks it first, so an
open breaker refuses with ``CircuitOpen`` before anything is sent; P2C counts
that refusal as a failure (``failure_penalty``) and prefers the other
instances for a while, and the proxy moves on to another one.  The breaker
records connection errors, timeouts and answers of 5xx that are server faults
(500, 502, 503, 504, ...; not 501, which says the method does not exist);
4xx answers are the caller's business and count as successes; what the
caller does -- going away, sending a bad body, being too slow to send its
body or take the answer before the deadline -- counts as nothing.

The pool also holds the :class:`~kitpy.resilience.RetryBudget` for retries
to this service and the ``aiohttp.ClientSession`` requests go out on, which
the application owns: make it with :func:`upstream_session`.  A session that
keeps cookies is refused: one caller's cookies would go out with the next
caller's requests.

Example::

    session = upstream_session()
    async with UpstreamPool(EtcdInstancer(etcd, "/services/users/"), session,
                            name="users") as users:
        app.router.add_route("*", "/users/{tail:.*}", reverse_proxy(users))
        ...
    await session.close()
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Mapping, Sequence
from types import MappingProxyType
from typing import Generic, Self

import aiohttp
from aiohttp import web
from yarl import URL

from kitpy.circuitbreaker import Breaker, CircuitBreaker, ConsecutiveFailures
from kitpy.context import Context
from kitpy.endpoint import Endpoint, Req, Resp
from kitpy.errors import Cancelled, DeadlineExceeded, Unavailable, code_from_http_status, from_code
from kitpy.gateway.edge import mark_cors
from kitpy.gateway.exchange import BadGateway, Exchange
from kitpy.gateway.headers import response_headers
from kitpy.resilience.budget import RetryBudget
from kitpy.sd import P2C, Closer, Endpointer, ErrorReporter, Instance, Instancer
from kitpy.timeouts import TimeoutWheel
from kitpy.transport.http.keys import REQUEST_ID_HEADER, TIMEOUT_HEADER, format_timeout

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "RETRY_STATUSES",
    "InstancePool",
    "ProxyEndpoint",
    "UpstreamPool",
    "default_breaker",
    "upstream_session",
]

DEFAULT_CONNECT_TIMEOUT = 2.0
"""Seconds an attempt waits for a connection to an instance before trying another one."""

RETRY_STATUSES = frozenset({502, 503})
"""Answers after which a request that may be retried goes to another instance instead."""

# aiohttp adds these unless told not to; a proxy sends only what the caller sent
_SKIP_AUTO_HEADERS = frozenset({"Accept", "Accept-Encoding", "User-Agent", "Content-Type"})

ProxyEndpoint = Endpoint[Exchange, web.StreamResponse]
"""An instance endpoint of a pool: forwards one exchange there, returns the answer it relayed."""


def upstream_session(*, limit: int = 0, keepalive_timeout: float = 15.0) -> aiohttp.ClientSession:
    """An ``aiohttp.ClientSession`` fit for proxying; the application closes it.

    No cookie jar (one caller's cookies must never reach another's request),
    no automatic decompression (answers are relayed as sent), no session
    timeout (each attempt is bounded by its request's deadline), and
    ``limit`` connections at once over all instances (0: no limit; the
    gateway's own connection limit bounds them).  ``keepalive_timeout`` is how
    long an idle connection to an instance is kept for reuse.  Call it with
    the event loop running.

    Example::

        session = upstream_session()
        ...
        await session.close()
    """
    connector = aiohttp.TCPConnector(limit=limit, keepalive_timeout=keepalive_timeout)
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        timeout=aiohttp.ClientTimeout(total=None),
    )


def default_breaker(name: str, instance: Instance) -> CircuitBreaker:
    """The breaker an instance gets unless the pool is given another ``breaker=`` factory:
    open after 5 failures in a row, a trial call after 10 seconds, named
    ``"<service> <address>"``."""
    return CircuitBreaker(
        policy=ConsecutiveFailures(5), reset_timeout=10.0, name=f"{name} {instance.address}"
    )


class _Forward:
    """The endpoint for one instance: send the exchange there, relay the answer to the caller."""

    __slots__ = ("_base", "_breaker", "_name", "_session", "_timeout", "_timeouts")

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base: str,
        breaker: Breaker,
        *,
        name: str,
        connect_timeout: float,
        timeouts: TimeoutWheel,
    ) -> None:
        self._session = session
        self._base = base
        self._breaker = breaker
        self._name = name
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout)
        self._timeouts = timeouts

    async def __call__(self, ctx: Context, exchange: Exchange) -> web.StreamResponse:
        breaker = self._breaker
        token = breaker.before(ctx, self._name)  # an open breaker refuses: nothing is sent
        try:
            response = await self._bounded(ctx, exchange)
        except Exception as exc:
            body = exchange.body
            if body is not None and exc is body.error:  # the caller's doing: records nothing
                breaker.on_cancel(token)
            else:
                breaker.on_error(token, exc)  # its classifier decides what is a failure
            raise
        except BaseException:  # cancelled: neither success nor failure
            breaker.on_cancel(token)
            raise
        if response.status >= 500:  # relayed as it came, and still the instance's failure
            breaker.on_error(token, from_code(code_from_http_status(response.status)))
        else:
            breaker.on_success(token)
        return response

    async def _bounded(self, ctx: Context, exchange: Exchange) -> web.StreamResponse:
        remaining = ctx.time_remaining()
        if remaining is None:
            return await self._exchange(exchange)
        if remaining <= 0:
            raise DeadlineExceeded("deadline exceeded before the request was forwarded")
        exchange.headers[TIMEOUT_HEADER] = format_timeout(remaining)
        timer = self._timeouts.timeout(remaining)
        try:
            with timer:  # enters and leaves without waiting
                return await self._exchange(exchange)
        except TimeoutError:
            if timer.expired():
                raise exchange.deadline_error(self._name) from None
            raise

    async def _exchange(self, exchange: Exchange) -> web.StreamResponse:
        body = exchange.body
        try:
            async with self._session.request(
                exchange.method,
                URL(self._base + exchange.target, encoded=True),
                headers=exchange.headers,
                data=None if body is None else body.payload(),
                allow_redirects=False,  # the caller follows redirects, not the gateway
                auto_decompress=False,
                raise_for_status=False,
                skip_auto_headers=_SKIP_AUTO_HEADERS,
                timeout=self._timeout,
            ) as upstream:
                return await self._relay(exchange, upstream)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            if body is not None and body.error is not None:
                raise body.error from exc
            raise BadGateway(
                f"could not connect to an instance of {self._name!r}", sent=False
            ) from exc
        except aiohttp.ClientError as exc:
            if body is not None and body.error is not None:  # the caller broke it, not the instance
                raise body.error from exc
            if exchange.response is not None:
                message = f"an instance of {self._name!r} cut its answer short"
            else:
                message = f"an instance of {self._name!r} failed the request ({type(exc).__name__})"
            raise BadGateway(message) from exc

    async def _relay(
        self, exchange: Exchange, upstream: aiohttp.ClientResponse
    ) -> web.StreamResponse:
        status = upstream.status
        if status in RETRY_STATUSES:
            error = _status_error(status, self._name)
            if exchange.may_retry(error):
                raise error
        response = web.StreamResponse(status=status, headers=response_headers(upstream.headers))
        response.headers[REQUEST_ID_HEADER] = exchange.request_id
        mark_cors(exchange.request, response)
        exchange.response = response
        # ``exchange.writing`` is True while a write to the caller is awaited: its failure,
        # or a deadline passing meanwhile, is the caller's doing, not the instance's.  The
        # reads in between are the instance's (aiohttp ClientErrors).  One try for every
        # write rather than a coroutine per write.
        reader = upstream.content
        try:
            exchange.writing = True
            await response.prepare(exchange.request)
            while True:
                exchange.writing = False
                chunk = await reader.readany()
                exchange.writing = True
                if not chunk:
                    break
                exchange.sent += len(chunk)
                await response.write(chunk)
            await response.write_eof()
        except ConnectionError as exc:
            if exchange.writing:
                raise Cancelled("the caller went away during the answer") from exc
            raise
        exchange.writing = False
        return response


def _status_error(status: int, name: str) -> Unavailable:
    message = f"an instance of {name!r} answered {status}"
    return BadGateway(message) if status == 502 else Unavailable(message)


class InstancePool(Generic[Req, Resp]):
    """What the gateway's pools share: one upstream's instances, followed from a kitpy.sd
    Instancer through an :class:`~kitpy.sd.Endpointer`, each with its own breaker."""

    name: str
    _endpointer: Endpointer[Req, Resp]
    _breakers: dict[Instance, Breaker]

    @property
    def instances(self) -> Sequence[Instance]:
        """The instances calls may go to now."""
        return self._endpointer.instances

    @property
    def breakers(self) -> Mapping[Instance, Breaker]:
        """Each current instance's breaker (read-only), e.g. for ``export_state``."""
        return MappingProxyType(self._breakers)

    async def wait_for(self, predicate: Callable[[Sequence[Instance]], bool]) -> None:
        """Return once ``predicate(self.instances)`` is true; bound it with a timeout."""
        await self._endpointer.wait_for(predicate)

    def start(self) -> None:
        """Start following the instancer (needs a running event loop; idempotent)."""
        self._endpointer.start()

    async def close(self) -> None:
        """Stop following the instancer and let go of every instance (a gRPC pool closes its
        channels; an HTTP pool's session is the application's and stays open)."""
        await self._endpointer.close()

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {len(self.instances)} instances)"


class UpstreamPool(InstancePool[Exchange, web.StreamResponse]):
    """The instances of one upstream service, each with its own breaker, behind a P2C balancer.

    ``instancer`` finds them (a :class:`~kitpy.sd.FixedInstancer`, etcd, DNS
    SRV); an instance's ``address`` is ``host:port``, reached over ``scheme``.
    ``session`` is the application's (see :func:`upstream_session`).
    ``name`` names the service in error messages and breakers.  ``breaker``
    makes each instance's breaker, ``breaker(name, instance)`` (default
    :func:`default_breaker`); ``budget`` bounds retries to this service
    (default: a :class:`~kitpy.resilience.RetryBudget` of 20 % + 10/s);
    ``connect_timeout`` bounds each connection attempt.  ``peak_ewma``,
    ``failure_penalty`` and ``rng`` go to :class:`~kitpy.sd.P2C`;
    ``invalidate_on_error`` and ``on_error`` to :class:`~kitpy.sd.Endpointer`.

    Example::

        pool = UpstreamPool(FixedInstancer(["10.0.0.1:8080", "10.0.0.2:8080"]), session,
                            name="users")
        async with pool:
            await pool.wait_for(lambda instances: len(instances) > 0)
    """

    def __init__(
        self,
        instancer: Instancer,
        session: aiohttp.ClientSession,
        *,
        name: str = "upstream",
        scheme: str = "http",
        breaker: Callable[[str, Instance], Breaker] = default_breaker,
        budget: RetryBudget | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        peak_ewma: bool = False,
        failure_penalty: float = 1.0,
        rng: random.Random | None = None,
        invalidate_on_error: float | None = None,
        on_error: ErrorReporter | None = None,
    ) -> None:
        if not isinstance(session.cookie_jar, aiohttp.DummyCookieJar):
            raise ValueError(
                "the session keeps cookies, which would go out with other callers' requests: "
                "make it with upstream_session() or cookie_jar=aiohttp.DummyCookieJar()"
            )
        if scheme not in ("http", "https"):
            raise ValueError(f"scheme must be 'http' or 'https', got {scheme!r}")
        if connect_timeout <= 0:
            raise ValueError("connect_timeout must be > 0 seconds")
        self.name = name
        self.session = session
        self.budget = RetryBudget() if budget is None else budget
        self._scheme = scheme
        self._make_breaker = breaker
        self._connect_timeout = connect_timeout
        self._timeouts = TimeoutWheel()  # every attempt's deadline, on timers shared per tick
        self._breakers: dict[Instance, Breaker] = {}
        self._endpointer: Endpointer[Exchange, web.StreamResponse] = Endpointer(
            instancer, self._factory, invalidate_on_error=invalidate_on_error, on_error=on_error
        )
        self._balancer = P2C(
            self._endpointer, peak_ewma=peak_ewma, failure_penalty=failure_penalty, rng=rng
        )

    def _factory(self, instance: Instance) -> tuple[ProxyEndpoint, Closer]:
        base = f"{self._scheme}://{instance.address}"
        url = URL(base)
        if not url.host or url.raw_path not in ("", "/") or url.query_string:
            raise ValueError(f"instance address {instance.address!r} is not host:port")
        breaker = self._make_breaker(self.name, instance)
        self._breakers[instance] = breaker

        async def forget() -> None:
            if self._breakers.get(instance) is breaker:
                del self._breakers[instance]

        forward = _Forward(
            self.session,
            base,
            breaker,
            name=self.name,
            connect_timeout=self._connect_timeout,
            timeouts=self._timeouts,
        )
        return forward, forget

    def pick(self) -> ProxyEndpoint:
        """The instance endpoint P2C chooses now; raises ``Unavailable`` when there is none."""
        return self._balancer.pick()

    def pick_other(self, tried: Collection[object]) -> ProxyEndpoint | None:
        """The instance endpoint P2C chooses among those not in ``tried``, or None."""
        return self._balancer.pick_other(tried)
