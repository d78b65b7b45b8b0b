"""Simple balancers: round robin, uniform random, and RFC 2782 weighted random.

A balancer turns a set of endpoints into one endpoint per call: ``pick()``
returns the endpoint to use now, or raises ``Unavailable("no endpoints")``
when the set is empty.  Balancers read the set from an :class:`EndpointSource`
(an :class:`~kitpy.sd.Endpointer` is one) on every pick, so they follow
discovery without being told.  See :mod:`kitpy.sd.p2c` for least-loaded
balancing and :func:`kitpy.sd.balanced` for the endpoint that picks per call.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar

from kitpy.endpoint import Endpoint, Req, Resp
from kitpy.errors import Unavailable
from kitpy.sd.instance import Instance

__all__ = ["Balancer", "EndpointSource", "InstanceSource", "Random", "RoundRobin", "WeightedRandom"]

Req_contra = TypeVar("Req_contra", contravariant=True)
Resp_co = TypeVar("Resp_co", covariant=True)


class EndpointSource(Protocol[Req_contra, Resp_co]):
    """Anything with a current ``endpoints`` sequence, such as an Endpointer.

    The sequence must be replaced, not mutated, when the set changes: balancers
    cache per-set work and check ``endpoints is previous`` on each pick.
    """

    @property
    def endpoints(self) -> Sequence[Endpoint[Req_contra, Resp_co]]: ...


class InstanceSource(EndpointSource[Req_contra, Resp_co], Protocol[Req_contra, Resp_co]):
    """An :class:`EndpointSource` that also names the instance behind each endpoint."""

    @property
    def instances(self) -> Sequence[Instance]: ...


class Balancer(Protocol[Req_contra, Resp_co]):
    """Chooses the endpoint for the next call."""

    def pick(self) -> Endpoint[Req_contra, Resp_co]:
        """The endpoint to call now; raises ``Unavailable`` when there is none."""
        ...


def no_endpoints() -> Unavailable:
    """The error every balancer raises on an empty set."""
    return Unavailable("no endpoints")


class RoundRobin(Generic[Req, Resp]):
    """Each pick takes the next endpoint in turn.

    Example::

        balancer = RoundRobin(endpointer)
        response = await balancer.pick()(ctx, request)
    """

    def __init__(self, source: EndpointSource[Req, Resp]) -> None:
        self._source = source
        self._counter = itertools.count()

    def pick(self) -> Endpoint[Req, Resp]:
        """The next endpoint in turn."""
        endpoints = self._source.endpoints
        if not endpoints:
            raise no_endpoints()
        return endpoints[next(self._counter) % len(endpoints)]


class Random(Generic[Req, Resp]):
    """Each pick takes an endpoint uniformly at random (``rng`` for reproducible tests)."""

    def __init__(
        self, source: EndpointSource[Req, Resp], *, rng: random.Random | None = None
    ) -> None:
        self._source = source
        self._random = (rng or random.Random()).random

    def pick(self) -> Endpoint[Req, Resp]:
        """A uniformly random endpoint."""
        endpoints = self._source.endpoints
        if not endpoints:
            raise no_endpoints()
        return endpoints[int(self._random() * len(endpoints))]


class WeightedRandom(Generic[Req, Resp]):
    """RFC 2782 selection: lowest priority first, then at random in proportion to weight.

    Only instances with the lowest ``priority`` present are considered (the
    others are backups, used when the lowest group has left the set).  Among
    them an instance is chosen with probability ``weight / sum(weights)``;
    weight 0 is never chosen unless every weight in the group is 0, in which
    case the choice is uniform.  Fits DNS SRV records and weighted etcd entries.
    """

    def __init__(
        self, source: InstanceSource[Req, Resp], *, rng: random.Random | None = None
    ) -> None:
        self._source = source
        self._random = (rng or random.Random()).random
        self._seen: Sequence[Endpoint[Req, Resp]] | None = None
        self._group: list[Endpoint[Req, Resp]] = []
        self._cumulative: list[int] = []

    def _rebuild(self, endpoints: Sequence[Endpoint[Req, Resp]]) -> None:
        instances = self._source.instances
        self._seen = endpoints
        self._group, self._cumulative = [], []
        if not endpoints:
            return
        lowest = min(i.priority for i in instances)
        group = [(i, e) for i, e in zip(instances, endpoints, strict=True) if i.priority == lowest]
        uniform = all(i.weight == 0 for i, _ in group)
        total = 0
        for instance, endpoint in group:
            weight = 1 if uniform else instance.weight
            if weight > 0:
                total += weight
                self._group.append(endpoint)
                self._cumulative.append(total)

    def pick(self) -> Endpoint[Req, Resp]:
        """An endpoint of the lowest priority, chosen in proportion to weight."""
        endpoints = self._source.endpoints
        if endpoints is not self._seen:
            self._rebuild(endpoints)
        if not self._group:
            raise no_endpoints()
        cumulative = self._cumulative
        point = self._random() * cumulative[-1]
        return self._group[bisect.bisect_right(cumulative, point)]
