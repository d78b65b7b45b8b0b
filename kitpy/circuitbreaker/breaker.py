"""A native asyncio circuit breaker: closed -> open -> half-open -> closed.

* **closed**: calls go through; the :mod:`~kitpy.circuitbreaker.policy` counts
  failures and trips the breaker open.
* **open**: calls fail at once with :class:`~kitpy.errors.CircuitOpen` (with a
  ``Retry-After`` header) until ``reset_timeout`` has passed.
* **half-open**: up to ``half_open_max_calls`` trial calls run at the same time;
  the others fail fast with ``CircuitOpen``.  Any counted failure re-opens the
  breaker; once ``half_open_max_calls`` trials succeed it closes.

What counts: the ``classifier`` decides (default :func:`kitpy.errors.is_server_fault`,
so client faults such as NOT_FOUND are successes -- the dependency answered).
A breaker without a ``name`` names a refused call in its ``CircuitOpen`` by the
guarded endpoint's name or the transport's operation (see
:mod:`~kitpy.circuitbreaker.rejection`), never by a placeholder.
A cancelled call records nothing (a half-open trial slot is freed).  Results of
calls admitted before a state change are ignored, so a slow call that started
while closed cannot close a breaker that has since opened.

Single event loop only (no locks): admission and recording never await.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable

from kitpy.context import Clock, Context
from kitpy.errors import Classifier, is_cancellation, is_server_fault

from .policy import ConsecutiveFailures, TripPolicy
from .rejection import circuit_open

__all__ = ["UNNAMED", "CircuitBreaker", "Listener", "State"]


class State(enum.IntEnum):
    """Breaker states; the values are what a state gauge reports."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


# Enum members bound to module constants: ``State.CLOSED`` is a slow class
# attribute lookup on Python 3.11 (~100 ns), which the closed-path check avoids.
_CLOSED = State.CLOSED
_HALF_OPEN = State.HALF_OPEN
_OPEN = State.OPEN

Listener = Callable[[str, State, State], None]
"""``listener(breaker_name, old_state, new_state)``, called on every transition.

The name is the breaker's own, or ``"circuit breaker"`` for one created without
a name: a transition is not one call's doing, and one breaker may guard several
endpoints, so name a breaker whose transitions you log.
"""

UNNAMED = "circuit breaker"
"""What listeners are told a breaker created without a ``name`` is called."""


class CircuitBreaker:
    """An asyncio circuit breaker; wrap endpoints with :func:`circuit_breaker`.

    ``name`` (optional) names it in ``CircuitOpen`` messages and to listeners;
    without one a refused call is named by the endpoint or operation it was for.

    Example::

        breaker = CircuitBreaker(policy=ConsecutiveFailures(5), reset_timeout=10.0)
        client = circuit_breaker(breaker)(client)
    """

    __slots__ = (
        "_classifier",
        "_clock",
        "_generation",
        "_listeners",
        "_max_trials",
        "_opened_at",
        "_reset_timeout",
        "_state",
        "_tracker",
        "_trial_successes",
        "_trials",
        "name",
    )

    def __init__(
        self,
        *,
        policy: TripPolicy | None = None,
        reset_timeout: float = 30.0,
        half_open_max_calls: int = 1,
        classifier: Classifier = is_server_fault,
        clock: Clock = time.monotonic,
        listeners: Iterable[Listener] = (),
        name: str | None = None,
    ) -> None:
        if reset_timeout < 0:
            raise ValueError("reset_timeout must be >= 0")
        if half_open_max_calls < 1:
            raise ValueError("half_open_max_calls must be at least 1")
        self.name = name
        self._tracker = (policy or ConsecutiveFailures()).tracker(clock)
        self._reset_timeout = reset_timeout
        self._max_trials = half_open_max_calls
        self._classifier = classifier
        self._clock = clock
        self._listeners = list(listeners)
        self._state = _CLOSED
        self._generation = 0
        self._opened_at = 0.0
        self._trials = 0
        self._trial_successes = 0

    # -- inspection ---------------------------------------------------------------

    @property
    def state(self) -> State:
        """The current state (an open breaker whose timeout passed reads as half-open)."""
        if self._state is _OPEN and self._clock() >= self._opened_at + self._reset_timeout:
            self._transition(_HALF_OPEN)
        return self._state

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(name, old, new)`` on every state change from now on."""
        self._listeners.append(listener)

    # -- manual control -------------------------------------------------------------

    def trip(self) -> None:
        """Force the breaker open (e.g. from an admin endpoint)."""
        self._transition(_OPEN)

    def reset(self) -> None:
        """Force the breaker closed and forget all counts."""
        self._transition(_CLOSED)

    # -- the Breaker protocol used by the middleware ---------------------------------

    def before(self, ctx: Context | None = None, operation: str | None = None) -> int:
        """Admit a call or raise ``CircuitOpen``; returns a token for the outcome methods.

        ``ctx`` and ``operation`` (the guarded endpoint's name) only name a
        refused call when the breaker has no name of its own.
        """
        if self._state is _CLOSED:
            return self._generation
        if self._state is _OPEN:
            wait = self._opened_at + self._reset_timeout - self._clock()
            if wait > 0:
                raise circuit_open(self.name, ctx=ctx, operation=operation, retry_after=wait)
            self._transition(_HALF_OPEN)
        if self._trials >= self._max_trials:
            raise circuit_open(self.name, ctx=ctx, operation=operation, half_open=True)
        self._trials += 1
        return self._generation

    def on_success(self, token: int) -> None:
        """Record a success for the call admitted with ``token``."""
        if token != self._generation:
            return
        if self._state is _CLOSED:
            self._tracker.success()
        elif self._state is _HALF_OPEN:
            self._trials -= 1
            self._trial_successes += 1
            if self._trial_successes >= self._max_trials:
                self._transition(_CLOSED)

    def on_error(self, token: int, exc: BaseException) -> None:
        """Record the call's exception: a failure, a success, or nothing (cancellation)."""
        if is_cancellation(exc):
            self.on_cancel(token)
        elif not self._classifier(exc):
            self.on_success(token)
        elif token == self._generation:
            if self._state is _HALF_OPEN:
                self._trials -= 1
                self._transition(_OPEN)
            elif self._state is _CLOSED and self._tracker.failure():
                self._transition(_OPEN)

    def on_cancel(self, token: int) -> None:
        """Record nothing for a cancelled call, but free its half-open trial slot."""
        if token == self._generation and self._state is _HALF_OPEN:
            self._trials -= 1

    # -- internals ---------------------------------------------------------------------

    def _transition(self, new: State) -> None:
        old = self._state
        if old is new:
            return
        self._state = new
        self._generation += 1
        self._trials = 0
        self._trial_successes = 0
        if new is _OPEN:
            self._opened_at = self._clock()
        elif new is _CLOSED:
            self._tracker.reset()
        name = UNNAMED if self.name is None else self.name
        for listener in self._listeners:
            listener(name, old, new)

    def __repr__(self) -> str:
        if self.name is None:
            return f"CircuitBreaker({self._state.name})"
        return f"CircuitBreaker({self.name!r}, {self._state.name})"
