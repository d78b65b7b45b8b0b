"""Resilience middleware for calls to other services; needs no third-party package.

* :func:`timeout` -- narrow the Context deadline and enforce it.
* :func:`retry` + :class:`RetryBudget` + :class:`RetryError` -- bounded by attempts,
  the deadline and a budget, with exponential backoff and full jitter.
* :func:`fallback` -- a degraded answer on failure.

What counts as a failure is :mod:`kitpy.errors`' one policy: each middleware
takes a ``classifier=`` (retry defaults to :func:`~kitpy.errors.is_retryable`,
fallback to :func:`~kitpy.errors.is_server_fault`).  Concurrency limits (bulkheads)
live with the rate limits in :mod:`kitpy.ratelimit`; breakers in
:mod:`kitpy.circuitbreaker`.

Example::

    client = chain(
        timeout(1.0),
        retry(max_attempts=3, budget=RetryBudget()),
    )(http_client)
"""

from kitpy.resilience.budget import RetryBudget
from kitpy.resilience.fallback import FallbackHandler, fallback
from kitpy.resilience.retry import RetryError, retry
from kitpy.resilience.timeout import timeout

__all__ = [
    "FallbackHandler",
    "RetryBudget",
    "RetryError",
    "fallback",
    "retry",
    "timeout",
]
