"""Endpoints that load-balance: :func:`balanced` and :func:`lb_retry`.

``balanced(balancer)`` is an Endpoint that asks the balancer for an endpoint
on every call.  ``lb_retry(balancer, ...)`` wraps it in the resilience
package's :func:`~kitpy.resilience.retry`; since each attempt calls the
balanced endpoint again, every attempt goes to a freshly picked instance, so
a dead or draining instance costs one fast failure, not a failed request.
That use of ``retry`` is the one import of :mod:`kitpy.resilience` in
``kitpy.sd``: the rest of the package depends on the core only.

Both build an endpoint rather than wrap one, so they take ``name=``: the
operation name the endpoint carries (see :func:`~kitpy.endpoint.named`) for the
logging, metrics and tracing layers stacked on it.

Example::

    endpoint = lb_retry(P2C(endpointer), max_attempts=3, name="uppercase")
    response = await endpoint(ctx.with_timeout(1.0), request)
"""

from __future__ import annotations

from typing import Any

from kitpy.context import Context
from kitpy.endpoint import Endpoint, Req, Resp, named
from kitpy.resilience import retry
from kitpy.sd.balancer import Balancer

__all__ = ["balanced", "lb_retry"]


def balanced(balancer: Balancer[Req, Resp], *, name: str | None = None) -> Endpoint[Req, Resp]:
    """An endpoint that calls ``balancer.pick()``'s choice, picking again on every call.

    Raises ``Unavailable("no endpoints")`` (from the balancer) when the set is
    empty, which retry treats as retryable.  ``name`` gives the endpoint an
    operation name.
    """
    pick = balancer.pick

    async def endpoint(ctx: Context, request: Req) -> Resp:
        return await pick()(ctx, request)

    return endpoint if name is None else named(name)(endpoint)


def lb_retry(
    balancer: Balancer[Req, Resp], *, name: str | None = None, **retry_options: Any
) -> Endpoint[Req, Resp]:
    """``kitpy.resilience.retry(**retry_options)`` around :func:`balanced`.

    Every option of ``retry`` applies (``max_attempts``, ``budget``,
    ``base_delay``, ``max_delay``, ``classifier``, ``clock``, ``sleep``,
    ``rng``); attempts stop at the Context deadline.  ``name`` gives the
    endpoint an operation name.

    Example::

        uppercase = lb_retry(P2C(endpointer), max_attempts=3, name="uppercase")
        assert endpoint_name(uppercase) == "uppercase"
    """
    return retry(**retry_options)(balanced(balancer, name=name))
