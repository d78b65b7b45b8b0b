"""Circuit breakers for asyncio endpoints.

* :class:`CircuitBreaker` -- the native breaker (:class:`ConsecutiveFailures` or
  :class:`FailureRate` policy, reset timeout, bounded half-open trials,
  listeners, injectable clock).
* :func:`circuit_breaker` -- the middleware; raises :class:`~kitpy.errors.CircuitOpen`
  (UNAVAILABLE, HTTP 503) without calling the endpoint while the breaker is open.
* :func:`export_state` -- the state as a gauge (0 closed, 1 half-open, 2 open).
* :func:`circuit_open` -- the ``CircuitOpen`` a breaker raises, naming the refused
  call (for writers of a :class:`Breaker`).
* ``kitpy.circuitbreaker.pybreaker_adapter.PyBreakerAdapter`` -- drive an existing
  ``pybreaker.CircuitBreaker`` correctly (needs ``kitpy[breaker]``).

Failures are decided by :func:`kitpy.errors.is_server_fault` unless a ``classifier=``
is given: client faults never trip a breaker; cancellation records nothing.
The package depends on the core only (it does not import :mod:`kitpy.resilience`).

Example::

    breaker = CircuitBreaker(policy=ConsecutiveFailures(5), reset_timeout=10.0)
    export_state(breaker, state_gauge)
    client = circuit_breaker(breaker)(client)
"""

from kitpy.circuitbreaker.breaker import CircuitBreaker, Listener, State
from kitpy.circuitbreaker.gauge import GaugeLike, export_state
from kitpy.circuitbreaker.middleware import Breaker, circuit_breaker
from kitpy.circuitbreaker.policy import (
    ConsecutiveFailures,
    FailureRate,
    FailureTracker,
    TripPolicy,
)
from kitpy.circuitbreaker.rejection import circuit_open

__all__ = [
    "Breaker",
    "CircuitBreaker",
    "ConsecutiveFailures",
    "FailureRate",
    "FailureTracker",
    "GaugeLike",
    "Listener",
    "State",
    "TripPolicy",
    "circuit_breaker",
    "circuit_open",
    "export_state",
]
