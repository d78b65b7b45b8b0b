"""Export a breaker's state as a gauge without importing a metrics backend.

Any object with ``set(value)`` fits :class:`GaugeLike` -- a kitpy metrics gauge, a
bound prometheus-client child (``Gauge(...).labels(breaker="users")``), or a
test double.  The value is the :class:`~kitpy.circuitbreaker.State`:
0 closed, 1 half-open, 2 open.
"""

from __future__ import annotations

from typing import Protocol

from .breaker import State
from .middleware import Breaker

__all__ = ["GaugeLike", "export_state"]


class GaugeLike(Protocol):
    """The one method a state gauge needs."""

    def set(self, value: float, /) -> None:
        """Set the gauge to ``value``."""


def export_state(breaker: Breaker, gauge: GaugeLike) -> None:
    """Set ``gauge`` to the breaker's state now and on every change.

    Example::

        export_state(breaker, breaker_state_gauge.labels(breaker="users"))
    """

    def listener(name: str, old: State, new: State) -> None:
        gauge.set(float(new))

    gauge.set(float(breaker.state))
    breaker.add_listener(listener)
