"""The gRPC instances of one upstream service, for the gateway's Connect routes.

:class:`GrpcPool` is the gRPC counterpart of
:class:`~kitpy.gateway.upstream.UpstreamPool`: it follows any kitpy.sd
Instancer, opens one ``grpc.aio`` channel per instance (closed, with a grace
period, when the instance leaves), gives each instance its own circuit
breaker, balances with P2C and bounds retries with a
:class:`~kitpy.resilience.RetryBudget`.  :meth:`GrpcPool.endpoint` is the
``Endpoint[UnaryCall, UnaryReply]`` a :func:`~kitpy.gateway.connect_handler`
calls.  The message types come from the ``descriptors`` given, or else from
the instances' gRPC server reflection (:class:`PooledReflection`: asked of any
instance that answers, cached).

An instance's gRPC address is its ``address``, or with ``address_key`` the
value of that key in its metadata -- so an instance registered with its HTTP
address and its gRPC one in metadata (as stringsvc does, under ``grpc``)
serves both kinds of route from one registration.

Retries: a call refused by an open breaker goes to another instance at once;
one gRPC could not send (no connection to the instance: UNAVAILABLE, "failed
to connect to all addresses") goes to another instance whatever its method;
one that failed with UNAVAILABLE after it was sent goes to another instance
only when the method is idempotent (``idempotency_level`` in the .proto) --
a non-idempotent call may have run.  All within the retry budget and the
deadline.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
import grpc.aio

from kitpy.circuitbreaker import Breaker, circuit_breaker
from kitpy.context import Context
from kitpy.endpoint import Endpoint
from kitpy.errors import CircuitOpen, KitError, Unavailable
from kitpy.resilience.budget import RetryBudget
from kitpy.sd import P2C, Closer, Endpointer, Instance, Instancer

from .descriptors import Descriptors, ProtoMethod, ReflectionDescriptors
from .grpc_upstream import UnaryCall, UnaryReply, grpc_upstream
from .upstream import InstancePool, default_breaker

__all__ = ["CHANNEL_GRACE", "GrpcPool", "PooledReflection", "insecure_channel"]

CHANNEL_GRACE = 5.0
"""Seconds calls in flight on a departing instance's channel get before it closes."""

UnaryEndpoint = Endpoint[UnaryCall, UnaryReply]


def insecure_channel(address: str) -> grpc.aio.Channel:
    """The default channel factory: plaintext to ``address`` (``host:port``)."""
    return grpc.aio.insecure_channel(address)


class PooledReflection:
    """:class:`~kitpy.gateway.descriptors.Descriptors` read by server reflection from
    whichever instance of a pool answers (each instance's reflection is cached)."""

    __slots__ = ("_by_instance", "name")

    def __init__(self, *, name: str = "upstream") -> None:
        self.name = name
        self._by_instance: dict[Instance, ReflectionDescriptors] = {}

    def add(self, instance: Instance, channel: grpc.aio.Channel) -> None:
        """Read reflection from ``instance`` over ``channel`` too."""
        self._by_instance[instance] = ReflectionDescriptors(channel)

    def remove(self, instance: Instance) -> None:
        """Stop asking ``instance``."""
        self._by_instance.pop(instance, None)

    async def lookup(self, method: str) -> ProtoMethod | None:
        """The method, from the first instance whose reflection answers; ``Unavailable``
        when none does."""
        failure: Unavailable | None = None
        for descriptors in list(self._by_instance.values()):
            try:
                return await descriptors.lookup(method)
            except Unavailable as exc:
                failure = exc
        raise failure or Unavailable(
            f"no instance of {self.name!r} is available to read its descriptors from"
        )


class GrpcPool(InstancePool[UnaryCall, UnaryReply]):
    """One upstream's gRPC instances: a channel and a breaker each, behind P2C.

    ``instancer`` finds them; ``name`` names the service in errors and
    breakers; ``address_key`` picks the gRPC address out of an instance's
    metadata (default: its ``address``); ``channel(address)`` opens a channel
    (default :func:`insecure_channel`); ``breaker(name, instance)`` makes each
    instance's breaker (default: 5 failures in a row open it for 10 s);
    ``budget`` bounds the retries (default 20 % + 10/s); ``descriptors``
    gives the message types (default: the instances' server reflection).

    Example::

        pool = GrpcPool(EtcdInstancer(etcd, "/services/stringsvc/"), name="stringsvc",
                        address_key="grpc")
        async with pool:
            handler = connect_handler(pool.endpoint(retries=2), pool.descriptors)
    """

    def __init__(
        self,
        instancer: Instancer,
        *,
        name: str = "upstream",
        address_key: str = "",
        channel: Callable[[str], grpc.aio.Channel] = insecure_channel,
        breaker: Callable[[str, Instance], Breaker] = default_breaker,
        budget: RetryBudget | None = None,
        descriptors: Descriptors | None = None,
        grace: float = CHANNEL_GRACE,
    ) -> None:
        self.name = name
        self.budget = RetryBudget() if budget is None else budget
        self._address_key = address_key
        self._channel = channel
        self._make_breaker = breaker
        self._grace = grace
        self._reflection: PooledReflection | None = None
        if descriptors is None:
            descriptors = self._reflection = PooledReflection(name=name)
        self.descriptors = descriptors
        self._breakers: dict[Instance, Breaker] = {}
        self._endpointer: Endpointer[UnaryCall, UnaryReply] = Endpointer(instancer, self._factory)
        self._balancer = P2C(self._endpointer)

    def _address(self, instance: Instance) -> str:
        if not self._address_key:
            return instance.address
        address = instance.metadata.get(self._address_key)
        if not address:
            raise ValueError(
                f"instance {instance.address} of {self.name!r} has no {self._address_key!r} "
                "in its metadata"
            )
        return address

    def _factory(self, instance: Instance) -> tuple[UnaryEndpoint, Closer]:
        channel = self._channel(self._address(instance))
        breaker = self._make_breaker(self.name, instance)
        self._breakers[instance] = breaker
        if self._reflection is not None:
            self._reflection.add(instance, channel)

        async def close() -> None:
            if self._breakers.get(instance) is breaker:
                del self._breakers[instance]
            if self._reflection is not None:
                self._reflection.remove(instance)
            await channel.close(self._grace)

        return circuit_breaker(breaker)(grpc_upstream(channel)), close

    def endpoint(self, *, retries: int = 2) -> UnaryEndpoint:
        """The endpoint making a call on an instance, with up to ``retries`` more attempts."""
        balancer, budget = self._balancer, self.budget
        name = self.name

        async def call(ctx: Context, request: UnaryCall) -> UnaryReply:
            budget.deposit()
            tried: set[object] = set()
            left = retries
            failure: KitError | None = None
            while (upstream := balancer.pick_other(tried)) is not None:
                tried.add(upstream)
                try:
                    return await upstream(ctx, request)
                except CircuitOpen as exc:  # nothing was sent: try elsewhere, at no cost
                    failure = failure or Unavailable(
                        f"no instance of {name!r} is available: their circuit breakers are open",
                        headers=exc.headers,
                    )
                    continue
                except Unavailable as exc:
                    if not _may_retry(request.method, exc, ctx, left, budget):
                        raise
                    failure = exc
                left -= 1
            raise failure or Unavailable(f"no instance of {name!r} is available")

        return call


def _may_retry(
    method: ProtoMethod, error: Unavailable, ctx: Context, left: int, budget: RetryBudget
) -> bool:
    """Whether a call that failed with ``error`` may go to another instance."""
    remaining = ctx.time_remaining()
    return (
        (method.idempotent or _never_sent(error))
        and left > 0
        and (remaining is None or remaining > 0)
        and budget.try_withdraw()
    )


def _never_sent(error: Unavailable) -> bool:
    """Whether gRPC failed the call before sending it: no connection to the instance.

    gRPC core fails a call whose channel cannot connect with UNAVAILABLE and
    the details ``failed to connect to all addresses`` (its load-balancing
    pick failed), before a byte of it is on the wire; a call cut off after it
    was sent has other details.  So such a call is safe to send elsewhere,
    whatever its method, as the HTTP proxy does with a refused connection.
    """
    cause = error.__cause__
    return (
        isinstance(cause, grpc.aio.AioRpcError)
        and cause.code() == grpc.StatusCode.UNAVAILABLE
        and (cause.details() or "").startswith("failed to connect to all addresses")
    )
