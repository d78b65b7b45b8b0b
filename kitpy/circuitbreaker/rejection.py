"""The :class:`~kitpy.errors.CircuitOpen` a breaker raises, named for what it guards.

A breaker with a name of its own says so (``circuit 'users' is open``).  One
without says which call it refused: the guarded endpoint's name
(:func:`~kitpy.endpoint.endpoint_name`), else the operation the transport is
serving (:data:`~kitpy.context.OPERATION`), else nothing more than
``circuit breaker is open``.  The lookup runs only when a call is refused, so
the closed path pays nothing for it.
"""

from __future__ import annotations

import math

from kitpy.context import OPERATION, Context
from kitpy.errors import CircuitOpen

__all__ = ["circuit_open"]


def circuit_open(
    name: str | None,
    *,
    ctx: Context | None = None,
    operation: str | None = None,
    retry_after: float | None = None,
    half_open: bool = False,
) -> CircuitOpen:
    """Build the ``CircuitOpen`` a breaker named ``name`` (or unnamed) raises for a refused call.

    ``operation`` is the guarded endpoint's name and ``ctx`` the refused call's
    Context, both used only when ``name`` is None.  ``retry_after`` (seconds
    until the breaker lets a trial call through) becomes a ``Retry-After``
    header of at least 1; ``half_open`` says the trial calls are busy.  For
    writers of a :class:`~kitpy.circuitbreaker.Breaker`.

    Example::

        err = circuit_open(None, operation="get_user", retry_after=2.5)
        assert err.message == "circuit breaker for 'get_user' is open"
        assert err.headers == {"Retry-After": "3"}
    """
    if name is not None:
        subject = f"circuit {name!r}"
    else:
        if operation is None and ctx is not None:
            operation = ctx.get(OPERATION)
        subject = "circuit breaker" if operation is None else f"circuit breaker for {operation!r}"
    state = "is half-open and its trial calls are busy" if half_open else "is open"
    headers = None
    if retry_after is not None:
        headers = {"Retry-After": str(max(1, math.ceil(retry_after)))}
    return CircuitOpen(f"{subject} {state}", headers=headers)
