"""The proxying pattern: Uppercase served by the other live stringsvc instances.

With ``--proxy``, this instance's ``uppercase`` endpoint is not the local
service but a client stack that spreads calls over the instances a registry
knows, outermost first:

    client span + log + metrics       (one per logical call, whatever the retries)
    -> deadline (``--proxy-timeout`` when the caller sent none shorter)
    -> rate limit (token bucket; 429 when exceeded)
    -> retry (fresh instance per attempt, bounded by the deadline and a budget)
    -> P2C least-loaded balancer over the Endpointer's live set
    -> per-instance circuit breaker (state exported as ``kitpy_breaker_state``)
    -> HTTP or gRPC client (trace context and the caller's token forwarded)

Instances come from etcd (``etcd://host:port``, under ``--sd-prefix``) or a
fixed list (``static://host:port,host:port``: HTTP addresses, or gRPC ones with
``--proxy-transport grpc``).  A registered instance's gRPC address travels in its
metadata (key ``grpc``).  An instance that is this
process itself is left out, so a proxy may register too without calling itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable

import aiohttp
import grpc.aio
from prometheus_client import Gauge

from kitpy import Endpoint, chain
from kitpy.auth import context_to_grpc, context_to_http
from kitpy.circuitbreaker import CircuitBreaker, ConsecutiveFailures, circuit_breaker, export_state
from kitpy.ratelimit import TokenBucket, erroring_limiter
from kitpy.resilience import RetryBudget, timeout
from kitpy.sd import P2C, Closer, Endpointer, Event, FixedInstancer, Instance, Instancer, lb_retry
from kitpy.sd.etcd import EtcdClient, EtcdInstancer

from .config import Config
from .endpoints import UppercaseRequest, UppercaseResponse
from .observability import Observability
from .transport_grpc import make_grpc_client
from .transport_http import make_http_client

__all__ = ["GRPC_ADDRESS", "WithoutSelf", "open_proxy", "registration"]

GRPC_ADDRESS = "grpc"
"""Instance metadata key holding an instance's gRPC address (its address is HTTP)."""

UppercaseEndpoint = Endpoint[UppercaseRequest, UppercaseResponse]


class WithoutSelf:
    """An Instancer that hides one address (this process) from another Instancer.

    ``own_address()`` is asked on every event, so a process listening on port 0
    can fill in its real address once it has bound it (before it registers).
    """

    def __init__(self, inner: Instancer, own_address: Callable[[], str]) -> None:
        self._inner = inner
        self._own = own_address

    async def subscribe(self) -> AsyncIterator[Event]:
        async for event in self._inner.subscribe():
            if event.error is None:
                own = self._own()
                event = Event(tuple(i for i in event.instances if i.address != own))
            yield event


def _etcd_url(url: str) -> str:
    return "http://" + url.partition("://")[2].rstrip("/")


@contextlib.asynccontextmanager
async def open_proxy(
    config: Config,
    *,
    session: aiohttp.ClientSession,
    obs: Observability,
    own_address: Callable[[], str],
) -> AsyncGenerator[UppercaseEndpoint, None]:
    """Yield the proxying uppercase endpoint; closes discovery and clients on exit.

    ``own_address()`` is this process's HTTP address as registered, left out of
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
            WithoutSelf(instancer, own_address), factory
        )
        await stack.enter_async_context(endpointer)
        proxied = lb_retry(
            P2C(endpointer), max_attempts=config.proxy_attempts, budget=RetryBudget()
        )
        stack_layers = chain(
            obs.client_middleware("uppercase", span_name="stringsvc.proxy/uppercase"),
            timeout(config.proxy_timeout),
            erroring_limiter(TokenBucket(config.proxy_qps, config.proxy_burst)),
        )
        yield stack_layers(proxied)


def registration(*, http_address: str, grpc_address: str) -> Instance:
    """The Instance this process registers: its HTTP address, gRPC address in metadata."""
    return Instance(http_address, metadata={GRPC_ADDRESS: grpc_address})
