"""Endpoints that load-balance: :func:`balanced` and :func:`lb_retry`.

``balanced(balancer)`` is an Endpoint that asks the balancer for an endpoint
on every call.  ``lb_retry(balancer, ...)`` wraps it in the resilience
package's :func:`~kitpy.resilience.retry`; since each attempt calls the
balanced endpoint again, every attempt goes to a freshly picked instance, so
a dead or draining instance costs one fast failure, not a failed request.

Example::

    endpoint = lb_retry(P2C(endpointer), max_attempts=3)
    response = await endpoint(ctx.with_timeout(1.0), request)
"""

from __future__ import annotations

from typing import Any

from kitpy.context import Context
from kitpy.endpoint import Endpoint, Req, Resp
from kitpy.resilience import retry
from kitpy.sd.balancer import Balancer

__all__ = ["balanced", "lb_retry"]


def balanced(balancer: Balancer[Req, Resp]) -> Endpoint[Req, Resp]:
    """An endpoint that calls ``balancer.pick()``'s choice, picking again on every call.

    Raises ``Unavailable("no endpoints")`` (from the balancer) when the set is
    empty, which retry treats as retryable.
    """
    pick = balancer.pick

    async def endpoint(ctx: Context, request: Req) -> Resp:
        return await pick()(ctx, request)

    return endpoint


def lb_retry(balancer: Balancer[Req, Resp], **retry_options: Any) -> Endpoint[Req, Resp]:
    """``kitpy.resilience.retry(**retry_options)`` around :func:`balanced`.

    Every option of ``retry`` applies (``max_attempts``, ``budget``,
    ``base_delay``, ``max_delay``, ``classifier``, ``clock``, ``sleep``,
    ``rng``); attempts stop at the Context deadline.
    """
    return retry(**retry_options)(balanced(balancer))
