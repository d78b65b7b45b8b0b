"""Resilience middleware that needs no third-party package.

* :mod:`~kitpy.resilience.classifier` -- the one "did that call fail?" policy
  (:func:`is_failure`, :func:`is_retryable_error`, :class:`Classifier`), shared
  by :mod:`kitpy.circuitbreaker` and :mod:`kitpy.ratelimit`.
* :func:`timeout` -- narrow the Context deadline and enforce it.
* :func:`retry` + :class:`RetryBudget` + :class:`RetryError` -- bounded by attempts,
  the deadline and a budget, with exponential backoff and full jitter.
* :func:`fallback` -- a degraded answer on failure.
* :func:`concurrency_limit` -- a bulkhead that sheds or queues excess calls.

Example::

    client = chain(
        timeout(1.0),
        retry(max_attempts=3, budget=RetryBudget()),
    )(http_client)
"""

from kitpy.resilience.budget import RetryBudget
from kitpy.resilience.classifier import (
    DEFAULT_CLASSIFIER,
    Classifier,
    ErrorClassifier,
    is_cancellation,
    is_failure,
    is_retryable_error,
)
from kitpy.resilience.concurrency import ConcurrencyLimiter, concurrency_limit
from kitpy.resilience.fallback import FallbackHandler, fallback
from kitpy.resilience.retry import RetryError, retry
from kitpy.resilience.timeout import timeout
from kitpy.resilience.window import RollingCounter

__all__ = [
    "DEFAULT_CLASSIFIER",
    "Classifier",
    "ConcurrencyLimiter",
    "ErrorClassifier",
    "FallbackHandler",
    "RetryBudget",
    "RetryError",
    "RollingCounter",
    "concurrency_limit",
    "fallback",
    "is_cancellation",
    "is_failure",
    "is_retryable_error",
    "retry",
    "timeout",
]
