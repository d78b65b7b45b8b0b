"""The proxying pattern: Uppercase served by the other live stringsvc instances.

With ``--proxy``, this instance's service is a :class:`ProxyingService`: its
``uppercase`` calls a client stack, passing the caller's Context on (so the
deadline, the trace, the request id and the bearer token travel), and owns
the upstream's failures -- a busy, broken or unreachable upstream becomes this
service's own ``Unavailable``, never a leaked ``circuit '10.0.0.7:8080' is
open``.  The client stack spreads calls over the instances a registry knows,
outermost first:

    client span + log + metrics       (one per logical call, whatever the retries)
    -> deadline (``--proxy-timeout`` when the caller sent none shorter)
    -> rate limit (token bucket; beyond it a call fails at once: 429)
    -> retry (fresh instance per attempt, bounded by the deadline and a budget)
    -> P2C least-loaded balancer over the Endpointer's live set
    -> per-instance circuit breaker (state exported as ``kitpy_breaker_state``)
    -> HTTP or gRPC client (trace context and the caller's token forwarded)

Instances come from etcd (``etcd://host:port``, under ``--sd-prefix``) or a
fixed list (``static://host:port,host:port``: HTTP addresses, or gRPC ones with
``--proxy-transport grpc``).  A registered instance's gRPC address travels in its
metadata (key ``grpc``), and its id (key ``id``): an instance whose id is this
process's own is left out, so a proxy may register too without calling itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

import aiohttp
import grpc.aio
from prometheus_client import Gauge

from kitpy import (
    Cancelled,
    Code,
    Context,
    DeadlineExceeded,
    Endpoint,
    InvalidArgument,
    KitError,
    RateLimited,
    Unavailable,
    chain,
)
from kitpy.auth import context_to_grpc, context_to_http
from kitpy.circuitbreaker import CircuitBreaker, ConsecutiveFailures, circuit_breaker, export_state
from kitpy.errors import error_code
from kitpy.ratelimit import TokenBucket, rate_limit
from kitpy.resilience import RetryBudget, RetryError, timeout
from kitpy.sd import P2C, Closer, Endpointer, Event, FixedInstancer, Instance, Instancer, lb_retry
from kitpy.sd.etcd import EtcdClient, EtcdInstancer

from .config import Settings
from .endpoints import UppercaseRequest, UppercaseResponse
from .observability import Observability
from .service import StringService
from .transport_grpc import make_grpc_client
from .transport_http import make_http_client

__all__ = [
    "GRPC_ADDRESS",
    "INSTANCE_ID",
    "ProxyingService",
    "WithoutSelf",
    "open_proxy",
    "registration",
    "upstream_error",
]

GRPC_ADDRESS = "grpc"
"""Instance metadata key holding an instance's gRPC address (its address is HTTP)."""
INSTANCE_ID = "id"
"""Instance metadata key holding the registering process's id."""

UppercaseEndpoint = Endpoint[UppercaseRequest, UppercaseResponse]


class ProxyingService:
    """A ``StringService`` whose ``uppercase`` is served upstream; ``count`` stays local.

    ``uppercase`` passes the caller's Context on, and answers every failure of
    the upstream call with an error of its own (see :func:`upstream_error`).
    """

    def __init__(self, local: StringService, uppercase: UppercaseEndpoint) -> None:
        self._local = local
        self._uppercase = uppercase

    async def uppercase(self, ctx: Context, s: str) -> str:
        try:
            return (await self._uppercase(ctx, UppercaseRequest(s=s))).v
        except Exception as exc:
            raise upstream_error(exc) from exc  # the cause stays chained, for the logs

    async def count(self, ctx: Context, s: str) -> int:
        return await self._local.count(ctx, s)

    def tokens(self, ctx: Context, s: str) -> AsyncIterator[str]:
        return self._local.tokens(ctx, s)


def upstream_error(exc: Exception) -> KitError:
    """This service's own error for a failed upstream Uppercase; never the upstream's internals.

    Judged by the last attempt's error (retry wraps them all in a ``RetryError``):

    * the caller's input (INVALID_ARGUMENT, e.g. "empty string"): the same, to the caller;
    * the caller's deadline or cancellation: ``DeadlineExceeded`` / ``Cancelled``;
    * the proxy's rate limit (``--proxy-qps``, this service's published limit): a 429,
      ``RateLimited("uppercase is over its rate limit")``;
    * anything else -- circuit open, no instance, an upstream fault, a refused
      connection: ``Unavailable("uppercase is unavailable")`` (503).
    """
    last = exc.last if isinstance(exc, RetryError) else exc
    code = error_code(last)
    if code is Code.INVALID_ARGUMENT and isinstance(last, KitError):
        return InvalidArgument(last.message)
    if code is Code.DEADLINE_EXCEEDED:
        return DeadlineExceeded("deadline exceeded")
    if code is Code.CANCELLED:
        return Cancelled("cancelled")
    if code is Code.RESOURCE_EXHAUSTED:
        return RateLimited("uppercase is over its rate limit")
    return Unavailable("uppercase is unavailable")


class WithoutSelf:
    """An Instancer that hides the instances this process registered from another Instancer.

    They are the instances whose metadata ``id`` is ``own_id``; the id is made
    before the process listens, so it is known even when the ports are not.
    """

    def __init__(self, inner: Instancer, own_id: str) -> None:
        self._inner = inner
        self._own = own_id

    async def subscribe(self) -> AsyncIterator[Event]:
        async for event in self._inner.subscribe():
            if event.error is None:
                own = self._own
                event = Event(
                    tuple(i for i in event.instances if i.metadata.get(INSTANCE_ID) != own)
                )
            yield event


def _etcd_url(url: str) -> str:
    return "http://" + url.partition("://")[2].rstrip("/")


@contextlib.asynccontextmanager
async def open_proxy(
    config: Settings,
    *,
    session: aiohttp.ClientSession,
    obs: Observability,
    instance_id: str,
) -> AsyncGenerator[UppercaseEndpoint, None]:
    """Yield the proxying uppercase endpoint; closes discovery and clients on exit.

    Instances registered with ``instance_id`` (this process) are left out of
    the upstreams (see :class:`WithoutSelf`).
    """
    assert config.proxy is not None
    breaker_state = Gauge(
        "kitpy_breaker_state",
        "Circuit breaker state per upstream instance (0 closed, 1 half-open, 2 open)",
        ["upstream"],
        registry=obs.registry,
    )
    http_before = (*obs.http_client_before, context_to_http)
    grpc_before = (*obs.grpc_client_before, context_to_grpc)

    def factory(instance: Instance) -> tuple[UppercaseEndpoint, Closer | None]:
        closer: Closer | None = None
        if config.proxy_transport == "grpc":
            target = instance.metadata.get(GRPC_ADDRESS, instance.address)
            channel = grpc.aio.insecure_channel(target)
            client = make_grpc_client(channel, before=grpc_before).uppercase_endpoint

            async def close_channel() -> None:  # calls in flight get to finish
                await channel.close(grace=config.proxy_timeout)

            closer = close_channel
        else:
            url = f"http://{instance.address}"
            client = make_http_client(session, url, before=http_before).uppercase_endpoint
        breaker = CircuitBreaker(
            policy=ConsecutiveFailures(config.breaker_failures),
            reset_timeout=config.breaker_reset,
            name=instance.address,
        )
        export_state(breaker, breaker_state.labels(upstream=instance.address))
        return circuit_breaker(breaker)(client), closer

    async with contextlib.AsyncExitStack() as stack:
        scheme, _, rest = config.proxy.partition("://")
        instancer: Instancer
        if scheme == "etcd":
            etcd = await stack.enter_async_context(EtcdClient(_etcd_url(config.proxy)))
            instancer = await stack.enter_async_context(EtcdInstancer(etcd, config.sd_prefix))
        else:
            instancer = FixedInstancer(rest.split(","))
        endpointer: Endpointer[UppercaseRequest, UppercaseResponse] = Endpointer(
            WithoutSelf(instancer, instance_id), factory
        )
        await stack.enter_async_context(endpointer)
        proxied = lb_retry(
            P2C(endpointer), max_attempts=config.proxy_attempts, budget=RetryBudget()
        )
        stack_layers = chain(
            obs.client_middleware("uppercase", span_name="stringsvc.proxy/uppercase"),
            timeout(config.proxy_timeout),
            rate_limit(TokenBucket(config.proxy_qps, config.proxy_burst)),
        )
        yield stack_layers(proxied)


def registration(*, http_address: str, grpc_address: str, instance_id: str) -> Instance:
    """The Instance this process registers: its HTTP address; gRPC address and id in metadata."""
    return Instance(http_address, metadata={GRPC_ADDRESS: grpc_address, INSTANCE_ID: instance_id})
