"""The one answer to "did that call fail?", shared by breakers, limiters, retry and fallback.

Policy comes from the status :class:`~kitpy.errors.Code` (see :mod:`kitpy.errors`):

* client-fault codes (INVALID_ARGUMENT, NOT_FOUND, UNAUTHENTICATED, RESOURCE_EXHAUSTED, ...)
  are **not** failures: the dependency answered, the request was wrong;
* UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, UNKNOWN, DATA_LOSS and connection errors
  (``OSError``, which ``ConnectionError`` and ``TimeoutError`` are) **are** failures;
* cancellation (``asyncio.CancelledError`` or a CANCELLED :class:`~kitpy.errors.KitError`)
  is **neither**: the caller gave up, which says nothing about the dependency.

Retry asks a narrower question, "may another attempt succeed?": only UNAVAILABLE,
DEADLINE_EXCEEDED and connection errors.

A classifier is any ``Callable[[BaseException], bool]``; a :class:`Classifier`'s bound
methods are two of them.  Build your own to count other exception types (e.g. a
library's connection error that is not an ``OSError``)::

    classifier = Classifier(connection_errors=(OSError, aiohttp.ClientConnectionError))
    breaker = CircuitBreaker(classifier=classifier.is_failure)
    stack = retry(classifier=classifier.is_retryable)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from kitpy.errors import Code, KitError

__all__ = [
    "DEFAULT_CLASSIFIER",
    "Classifier",
    "ErrorClassifier",
    "is_cancellation",
    "is_failure",
    "is_retryable_error",
]

ErrorClassifier = Callable[[BaseException], bool]
"""A predicate over an exception, e.g. "is this a failure?" or "is this retryable?"."""

_FAILURE_CODES = frozenset(
    {Code.UNKNOWN, Code.INTERNAL, Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.DATA_LOSS}
)
_RETRYABLE_CODES = frozenset({Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED})


def is_cancellation(exc: BaseException) -> bool:
    """True for ``asyncio.CancelledError`` and CANCELLED KitErrors: neither success nor failure."""
    if isinstance(exc, asyncio.CancelledError):
        return True
    return isinstance(exc, KitError) and exc.code is Code.CANCELLED


@dataclass(frozen=True, slots=True)
class Classifier:
    """Decides which exceptions are failures and which are worth retrying.

    ``failure_codes`` / ``retryable_codes`` apply to :class:`~kitpy.errors.KitError`;
    ``connection_errors`` are exception types that count as both a failure and
    retryable (transport errors that were not converted to a KitError).  Any other
    exception that is not a KitError counts as a failure (an unexpected crash is a
    server fault) but is not retried.
    """

    failure_codes: frozenset[Code] = _FAILURE_CODES
    retryable_codes: frozenset[Code] = _RETRYABLE_CODES
    connection_errors: tuple[type[BaseException], ...] = (OSError,)

    def is_failure(self, exc: BaseException) -> bool:
        """True when ``exc`` says the dependency failed (counts against a breaker)."""
        if isinstance(exc, KitError):
            return exc.code in self.failure_codes
        if isinstance(exc, asyncio.CancelledError):
            return False
        return isinstance(exc, Exception)

    def is_retryable(self, exc: BaseException) -> bool:
        """True when another attempt may succeed (UNAVAILABLE, DEADLINE_EXCEEDED, connection)."""
        if isinstance(exc, KitError):
            return exc.code in self.retryable_codes
        return isinstance(exc, self.connection_errors)


DEFAULT_CLASSIFIER = Classifier()
"""The classifier every kitpy resilience middleware uses unless given another."""

is_failure: ErrorClassifier = DEFAULT_CLASSIFIER.is_failure
"""Default failure predicate: server-fault codes, connection errors, unexpected exceptions."""

is_retryable_error: ErrorClassifier = DEFAULT_CLASSIFIER.is_retryable
"""Default retry predicate: UNAVAILABLE, DEADLINE_EXCEEDED and connection errors."""
