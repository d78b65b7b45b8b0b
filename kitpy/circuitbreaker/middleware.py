"""``circuit_breaker(breaker)``: the middleware, and the small protocol a breaker implements.

The middleware asks the breaker to admit the call (``before`` raises
:class:`~kitpy.errors.CircuitOpen` without calling the endpoint; it is given the
call's Context and the guarded endpoint's name to say which call it refused),
then reports the outcome: ``on_success``, ``on_error`` (the breaker classifies
it) or ``on_cancel`` (cancellation and other ``BaseException`` exits record
nothing).  The native :class:`~kitpy.circuitbreaker.CircuitBreaker` and the
pybreaker adapter both fit.
"""

from __future__ import annotations

from typing import Protocol

from kitpy.context import Context
from kitpy.endpoint import Endpoint, GenericMiddleware, Req, Resp, endpoint_name, keep_name

from .breaker import Listener, State

__all__ = ["Breaker", "circuit_breaker"]


class Breaker(Protocol):
    """What :func:`circuit_breaker` needs from a breaker."""

    @property
    def state(self) -> State:
        """The current state."""
        ...

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(name, old, new)`` on every state change."""

    def before(self, ctx: Context | None = None, operation: str | None = None) -> int:
        """Admit a call (returning a token) or raise ``CircuitOpen``.

        ``ctx`` is the call's Context and ``operation`` the guarded endpoint's
        name (None when it has none); an unnamed breaker names the refused call
        by them (see :func:`~kitpy.circuitbreaker.circuit_open`).
        """
        ...

    def on_success(self, token: int) -> None:
        """The admitted call returned."""

    def on_error(self, token: int, exc: BaseException) -> None:
        """The admitted call raised ``exc``."""

    def on_cancel(self, token: int) -> None:
        """The admitted call was cancelled: record nothing."""


def circuit_breaker(breaker: Breaker) -> GenericMiddleware:
    """Guard an endpoint with ``breaker``; when open, raise ``CircuitOpen`` (HTTP 503).

    The wrapped endpoint keeps the inner one's name, and an unnamed breaker's
    ``CircuitOpen`` names the refused call by it (else by the operation in the
    Context).

    Example::

        breaker = CircuitBreaker(policy=FailureRate(0.5, window=10, min_calls=20))
        client = circuit_breaker(breaker)(client)
    """
    before = breaker.before
    on_success = breaker.on_success
    on_error = breaker.on_error
    on_cancel = breaker.on_cancel

    def middleware(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        operation = endpoint_name(next)

        async def endpoint(ctx: Context, request: Req) -> Resp:
            token = before(ctx, operation)
            try:
                response = await next(ctx, request)
            except Exception as exc:
                on_error(token, exc)
                raise
            except BaseException:
                on_cancel(token)
                raise
            on_success(token)
            return response

        return keep_name(endpoint, next)

    return middleware
