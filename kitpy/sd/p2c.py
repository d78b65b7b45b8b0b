"""Power of two choices, least loaded: the balancer to use by default.

Each pick samples two distinct endpoints at random and takes the less loaded
one.  Load is the number of requests in flight through this balancer or, with
``peak_ewma=True``, a peak-sensitive moving average of latency multiplied by
(in-flight + 1), as in Finagle's and tower's ``PeakEwma``.  Two random choices
avoid the herding of "always the least loaded" while still steering traffic
away from a slow or stuck instance; the per-endpoint state survives changes of
the endpoint set for instances that stay.

Peak EWMA: a response slower than the current estimate replaces it at once
(react to trouble immediately); a faster one is blended in with weight
``1 - exp(-elapsed / decay)``; with no traffic the estimate decays toward 0
so an idle instance gets probed again.  A new endpoint starts at
``default_rtt``.

Failure accrual: an instance that fails fast (connection refused after a
crash) has nothing in flight and a tiny latency, so plain least-loaded would
*prefer* it.  So a call that fails (``classifier``, by default
:func:`kitpy.errors.is_server_fault`: server faults and connection errors,
never client faults or cancellation) sidelines its instance for
``failure_penalty`` seconds: a sidelined endpoint loses every comparison with
one that is not.  Together with :func:`~kitpy.sd.lb_retry` a dead instance
costs about one fast failed attempt per penalty period until discovery drops it.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Collection, Sequence
from typing import Any, Generic

from kitpy.context import Clock, Context
from kitpy.endpoint import Endpoint, Req, Resp, keep_name
from kitpy.errors import Classifier, Unavailable, is_server_fault
from kitpy.sd.balancer import EndpointSource, no_endpoints

__all__ = ["P2C"]

_exp = math.exp


class _Node(Generic[Req, Resp]):
    """Load state for one endpoint plus the wrapper that keeps it current."""

    __slots__ = ("call", "cost", "endpoint", "failed_until", "inflight", "stamp")

    def __init__(self, endpoint: Endpoint[Req, Resp], cost: float, stamp: float) -> None:
        self.endpoint = endpoint
        self.inflight = 0
        self.failed_until = 0.0
        self.cost = cost
        self.stamp = stamp
        self.call: Endpoint[Req, Resp] = endpoint


class _Penalty:
    """Marks a node as failed for a while when a call raises a failure."""

    __slots__ = ("classifier", "clock", "seconds")

    def __init__(self, seconds: float, classifier: Classifier, clock: Clock) -> None:
        self.seconds = seconds
        self.classifier = classifier
        self.clock = clock

    def apply(self, node: _Node[Any, Any], exc: BaseException) -> None:
        if self.seconds > 0 and self.classifier(exc):
            node.failed_until = self.clock() + self.seconds


def _count_inflight(node: _Node[Req, Resp], penalty: _Penalty) -> Endpoint[Req, Resp]:
    endpoint = node.endpoint

    async def call(ctx: Context, request: Req) -> Resp:
        node.inflight += 1
        try:
            return await endpoint(ctx, request)
        except BaseException as exc:
            penalty.apply(node, exc)
            raise
        finally:
            node.inflight -= 1

    return keep_name(call, endpoint)


def _measure_latency(
    node: _Node[Req, Resp], penalty: _Penalty, clock: Clock, decay: float
) -> Endpoint[Req, Resp]:
    endpoint = node.endpoint
    exp = math.exp

    async def call(ctx: Context, request: Req) -> Resp:
        node.inflight += 1
        start = clock()
        try:
            return await endpoint(ctx, request)
        except BaseException as exc:
            penalty.apply(node, exc)
            raise
        finally:
            node.inflight -= 1
            now = clock()
            rtt = now - start
            if rtt >= node.cost:
                node.cost = rtt
            else:
                keep = exp(-max(0.0, now - node.stamp) / decay)
                node.cost = node.cost * keep + rtt * (1.0 - keep)
            node.stamp = now

    return keep_name(call, endpoint)


class P2C(Generic[Req, Resp]):
    """Power-of-two-choices, least-loaded balancer.

    Example::

        balancer = P2C(endpointer)                       # load = requests in flight
        balancer = P2C(endpointer, peak_ewma=True)       # load = latency x (in flight + 1)
        response = await balanced(balancer)(ctx, request)

    The endpoint ``pick()`` returns must be called for the accounting to work
    (it wraps the real one).  ``rng`` and ``clock`` are injectable; ``decay``
    (seconds) and ``default_rtt`` (seconds) tune peak EWMA; ``failure_penalty``
    (seconds, 0 to disable) and ``classifier`` tune failure accrual.
    """

    def __init__(
        self,
        source: EndpointSource[Req, Resp],
        *,
        peak_ewma: bool = False,
        decay: float = 10.0,
        default_rtt: float = 0.05,
        failure_penalty: float = 1.0,
        classifier: Classifier = is_server_fault,
        rng: random.Random | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        if decay <= 0:
            raise ValueError("decay must be > 0 seconds")
        if failure_penalty < 0:
            raise ValueError("failure_penalty must be >= 0 seconds")
        self._penalty = _Penalty(failure_penalty, classifier, clock)
        self._source = source
        self._peak_ewma = peak_ewma
        self._decay = decay
        self._default_rtt = default_rtt
        self._rng = rng or random.Random()
        self._random = self._rng.random
        self._clock = clock
        self._seen: Sequence[Endpoint[Req, Resp]] | None = None
        self._nodes: list[_Node[Req, Resp]] = []

    def _rebuild(self, endpoints: Sequence[Endpoint[Req, Resp]]) -> None:
        old = {id(node.endpoint): node for node in self._nodes}
        nodes: list[_Node[Req, Resp]] = []
        now = self._clock()
        for endpoint in endpoints:
            node = old.get(id(endpoint))
            if node is None or node.endpoint is not endpoint:
                node = _Node(endpoint, self._default_rtt, now)
                if self._peak_ewma:
                    node.call = _measure_latency(node, self._penalty, self._clock, self._decay)
                else:
                    node.call = _count_inflight(node, self._penalty)
            nodes.append(node)
        self._nodes = nodes
        self._seen = endpoints

    def pick(self) -> Endpoint[Req, Resp]:
        """The less loaded of two endpoints sampled at random."""
        endpoints = self._source.endpoints
        if endpoints is not self._seen:
            self._rebuild(endpoints)
        nodes = self._nodes
        n = len(nodes)
        if n < 2:
            if n == 0:
                raise no_endpoints()
            return nodes[0].call
        rand = self._random
        i = int(rand() * n)
        j = int(rand() * (n - 1))
        if j >= i:
            j += 1
        return self._lighter(nodes[i], nodes[j])

    def pick_other(self, avoid: Collection[object]) -> Endpoint[Req, Resp] | None:
        """Like :meth:`pick`, among the endpoints not in ``avoid``; None when none is left.

        For retries that must go to an instance not tried yet::

            tried = {endpoint}
            other = balancer.pick_other(tried)
        """
        if not avoid:  # nothing to avoid (a first attempt): a plain pick
            try:
                return self.pick()
            except Unavailable:
                return None
        endpoints = self._source.endpoints
        if endpoints is not self._seen:
            self._rebuild(endpoints)
        nodes = [node for node in self._nodes if node.call not in avoid]
        n = len(nodes)
        if n < 2:
            return nodes[0].call if n else None
        i, j = self._rng.sample(range(n), 2)
        return self._lighter(nodes[i], nodes[j])

    def _lighter(self, a: _Node[Req, Resp], b: _Node[Req, Resp]) -> Endpoint[Req, Resp]:
        """The call of the less loaded of two nodes; one sidelined loses to one that is not."""
        if a.failed_until or b.failed_until:
            now = self._clock()
            a_ok = a.failed_until <= now
            b_ok = b.failed_until <= now
            if a_ok:
                a.failed_until = 0.0
            if b_ok:
                b.failed_until = 0.0
            if a_ok != b_ok:
                return a.call if a_ok else b.call
        if self._peak_ewma:  # cost decayed toward 0 since the last sample, x (in flight + 1)
            now = self._clock()
            decay = self._decay
            load_a = a.cost * _exp((a.stamp - now) / decay) * (a.inflight + 1)
            load_b = b.cost * _exp((b.stamp - now) / decay) * (b.inflight + 1)
            return a.call if load_a <= load_b else b.call
        return a.call if a.inflight <= b.inflight else b.call
