"""Retry middleware: bounded by attempts *and* the Context deadline, with backoff and a budget.

Each attempt calls the wrapped endpoint again, so wrapping an endpoint that picks
a fresh instance per call (``kitpy.sd``) gives per-attempt load balancing.
Between attempts it sleeps an exponential backoff with full jitter,
``uniform(0, min(max_delay, base_delay * 2**(attempt - 1)))``, and it stops early:

* when the error is not retryable (the ``classifier``; default
  :func:`kitpy.errors.is_retryable`: UNAVAILABLE, DEADLINE_EXCEEDED and
  connection errors -- never a client fault);
* when the backoff would end at or past the Context deadline (it never sleeps
  or attempts past it);
* when the :class:`~kitpy.resilience.budget.RetryBudget` is spent.

On final failure it raises :class:`RetryError`, a KitError with the last
attempt's code and every attempt's exception in ``.errors``.  Cancellation is
never retried and propagates unchanged.

Why hand-written rather than tenacity: tenacity is not a kitpy dependency (and
``kitpy.resilience`` imports no third-party package), it knows nothing of the
Context deadline or of a budget shared across calls, and wiring both in through
its stop/wait/retry hooks costs more code and per-call overhead than the ~40
lines below.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence

from kitpy.config.live import Live, follow
from kitpy.context import Clock, Context
from kitpy.endpoint import Endpoint, GenericMiddleware, Req, Resp, keep_name
from kitpy.errors import Classifier, KitError, error_code, is_retryable
from kitpy.resilience.budget import RetryBudget

__all__ = ["RetryError", "retry"]

Sleep = Callable[[float], Awaitable[None]]


class RetryError(KitError):
    """Every attempt failed; ``code`` is the last attempt's, ``errors`` holds them all.

    The last error is also the ``__cause__``, and its ``headers`` (e.g. ``Retry-After``)
    are kept so transports still send them.
    """

    errors: tuple[BaseException, ...]

    def __init__(self, errors: Sequence[BaseException]) -> None:
        if not errors:
            raise ValueError("RetryError needs at least one error")
        last = errors[-1]
        code = error_code(last)
        detail = last.message if isinstance(last, KitError) else code.name.replace("_", " ").lower()
        attempts = "attempt" if len(errors) == 1 else "attempts"
        super().__init__(
            code,
            f"{len(errors)} {attempts} failed; last: {detail}",
            headers=last.headers if isinstance(last, KitError) else None,
        )
        self.errors = tuple(errors)

    @property
    def last(self) -> BaseException:
        """The final attempt's exception."""
        return self.errors[-1]


def _check_attempts(max_attempts: int) -> None:
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")


def retry(
    *,
    max_attempts: int | Live[int] = 3,
    budget: RetryBudget | None = None,
    base_delay: float = 0.05,
    max_delay: float = 1.0,
    classifier: Classifier = is_retryable,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
) -> GenericMiddleware:
    """Retry failed calls up to ``max_attempts`` in total, never past the Context deadline.

    ``budget=None`` gives this middleware its own default :class:`RetryBudget`
    (20 % of requests + 10 retries/s over 10 s, measured on ``clock``); pass a
    shared one to cap retries across several endpoints.  ``sleep`` and ``rng``
    are injectable for tests (``FakeClock.sleep``, ``random.Random(seed)``).
    ``classifier`` decides which errors are worth another attempt (default
    :func:`~kitpy.errors.is_retryable`).  ``max_attempts`` may be a live
    setting (:class:`~kitpy.config.Live`), read at each failure.  The wrapped
    endpoint keeps the inner one's name.

    Example::

        client = chain(breaker_mw, retry(max_attempts=3, base_delay=0.02))(http_client)
    """
    attempts = max_attempts if isinstance(max_attempts, Live) else Live(max_attempts, name="")
    _check_attempts(follow(attempts, _check_attempts))
    if base_delay < 0 or max_delay < 0:
        raise ValueError("delays must be >= 0")
    the_budget = RetryBudget(clock=clock) if budget is None else budget
    random_ = random.Random() if rng is None else rng
    uniform = random_.uniform
    deposit = the_budget.deposit
    withdraw = the_budget.try_withdraw

    def middleware(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        async def endpoint(ctx: Context, request: Req) -> Resp:
            deposit()
            try:
                return await next(ctx, request)
            except Exception as first:
                errors: list[BaseException] = [first]
            attempt = 1
            while attempt < attempts.value and classifier(errors[-1]):
                delay = uniform(0.0, min(max_delay, base_delay * (1 << (attempt - 1))))
                remaining = ctx.time_remaining()
                if remaining is not None and delay >= remaining:
                    break
                if not withdraw():
                    break
                if delay > 0:
                    await sleep(delay)
                attempt += 1
                try:
                    return await next(ctx, request)
                except Exception as exc:
                    errors.append(exc)
            raise RetryError(errors) from errors[-1]

        return keep_name(endpoint, next)

    return middleware
