"""Timeout middleware: narrow the Context deadline and enforce it.

``timeout(0.5)`` gives the wrapped endpoint a Context due in at most 0.5 s (or
at the caller's deadline, if sooner), so everything below -- retries, clients
sending the deadline on the wire -- sees the narrower budget, and cancels the
call with :class:`~kitpy.errors.DeadlineExceeded` if it is still running then.
A call whose deadline has already passed fails at once without being made.
"""

from __future__ import annotations

from kitpy.context import Context
from kitpy.endpoint import Endpoint, GenericMiddleware, Req, Resp, keep_name
from kitpy.errors import DeadlineExceeded
from kitpy.timeouts import TimeoutWheel

__all__ = ["timeout"]


def timeout(seconds: float) -> GenericMiddleware:
    """Bound each call to ``seconds`` (and to the caller's deadline).

    The deadline is measured on the Context's clock; the call is interrupted on
    the event loop's clock after the remaining time.  Only the interruption this
    middleware caused becomes ``DeadlineExceeded``; a ``TimeoutError`` raised by
    the endpoint itself passes through unchanged.  The wrapped endpoint keeps
    the inner one's name.

    Example::

        @timeout(0.2)
        async def lookup(ctx: Context, key: str) -> str: ...
    """
    if seconds <= 0:
        raise ValueError("timeout must be positive")

    timeouts = TimeoutWheel()  # the calls' timers, shared per tick

    def middleware(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        async def endpoint(ctx: Context, request: Req) -> Resp:
            now = ctx.clock()
            ctx = ctx.with_deadline(now + seconds)
            remaining = seconds if ctx.deadline is None else ctx.deadline - now
            if remaining <= 0:
                raise DeadlineExceeded("deadline already passed")
            cm = timeouts.timeout(remaining)
            try:
                async with cm:
                    return await next(ctx, request)
            except TimeoutError:
                if cm.expired():
                    raise DeadlineExceeded(f"timed out after {seconds:g}s") from None
                raise

        return keep_name(endpoint, next)

    return middleware
