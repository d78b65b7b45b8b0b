"""Use an existing ``pybreaker.CircuitBreaker`` correctly from asyncio code.

pybreaker is synchronous: ``breaker.call(async_fn)`` returns the coroutine
un-awaited and records a success, ``call_async`` needs tornado, half-open lets
every concurrent call through, and a cancelled call counts as a failure.
:class:`PyBreakerAdapter` keeps your breaker -- its ``fail_max``,
``reset_timeout``, ``success_threshold``, ``exclude`` list, listeners and state
storage -- and drives it so that, through :func:`~kitpy.circuitbreaker.circuit_breaker`:

* the endpoint is **awaited**, and its real outcome is recorded afterwards;
* **half-open admits at most** ``half_open_max_calls`` concurrent trials (the rest
  raise :class:`~kitpy.errors.CircuitOpen`), tracked by the adapter;
* **cancellation records nothing**, and a failure is recorded only when the kitpy
  classifier counts it (client faults are recorded as successes, as pybreaker
  does for its ``exclude`` list, which still applies too);
* an open breaker raises ``CircuitOpen`` (HTTP 503) with ``Retry-After`` rather than
  ``pybreaker.CircuitBreakerError``.

What it cannot fix (pybreaker's design):

* the outcome is recorded through ``breaker.call`` with a small internal function,
  so pybreaker listeners' ``before_call`` sees that function, not your endpoint;
* open-state timing: the adapter stamps the opening time itself on ``now`` (a
  wall clock, injectable for tests) when it sees the transition; for a breaker
  opened before the adapter was attached it reads pybreaker's own ``opened_at``
  from the storage object (there is no public accessor);
* ``CircuitRedisStorage`` does blocking Redis I/O on the event loop on every call;
* the half-open trial limit is per process (per adapter), not shared through storage;
* calling ``breaker.call`` / ``@breaker`` on coroutine functions elsewhere is still wrong.
"""

from __future__ import annotations

from kitpy._extras import require

require("pybreaker", extra="breaker")

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import pybreaker

from kitpy.context import Context
from kitpy.errors import Classifier, is_cancellation, is_server_fault

from .breaker import UNNAMED, Listener, State
from .rejection import circuit_open

__all__ = ["PyBreakerAdapter"]

_STATES = {
    pybreaker.STATE_CLOSED: State.CLOSED,
    pybreaker.STATE_HALF_OPEN: State.HALF_OPEN,
    pybreaker.STATE_OPEN: State.OPEN,
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _succeed() -> None:
    return None


def _fail(exc: BaseException) -> NoReturn:
    raise exc


class _Relay(pybreaker.CircuitBreakerListener):
    """Told by pybreaker of every state change; bumps the adapter's generation."""

    def __init__(self, adapter: PyBreakerAdapter) -> None:
        self._adapter = adapter

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        self._adapter._changed(old_state.name if old_state else None, new_state.name)


class PyBreakerAdapter:
    """Drive ``breaker`` (a ``pybreaker.CircuitBreaker``) from asyncio; see the module doc.

    Example::

        users_breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=30)
        client = circuit_breaker(PyBreakerAdapter(users_breaker))(client)
    """

    def __init__(
        self,
        breaker: pybreaker.CircuitBreaker,
        *,
        half_open_max_calls: int = 1,
        classifier: Classifier = is_server_fault,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        if half_open_max_calls < 1:
            raise ValueError("half_open_max_calls must be at least 1")
        self._cb = breaker
        self._max_trials = half_open_max_calls
        self._classifier = classifier
        self._now = now
        self._generation = 0
        self._trials = 0
        self._opened_at: datetime | None = None
        self._listeners: list[Listener] = []
        self.name: str | None = breaker.name or None
        breaker.add_listener(_Relay(self))

    @property
    def breaker(self) -> pybreaker.CircuitBreaker:
        """The wrapped pybreaker breaker."""
        return self._cb

    @property
    def state(self) -> State:
        """pybreaker's current state as a kitpy :class:`~kitpy.circuitbreaker.State`."""
        return _STATES[self._cb.state.name]

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(name, old, new)`` on every pybreaker state change."""
        self._listeners.append(listener)

    def _changed(self, old: str | None, new: str) -> None:
        self._generation += 1
        self._trials = 0
        self._opened_at = self._now() if new == pybreaker.STATE_OPEN else None
        old_state = _STATES.get(old or "", State.CLOSED)
        name = UNNAMED if self.name is None else self.name
        for listener in self._listeners:
            listener(name, old_state, _STATES[new])

    # -- the Breaker protocol ----------------------------------------------------------

    def before(self, ctx: Context | None = None, operation: str | None = None) -> int:
        """Admit a call or raise ``CircuitOpen`` (open, or half-open with trials busy).

        ``ctx`` and ``operation`` name a refused call when pybreaker's breaker has no name.
        """
        cb = self._cb
        name = cb.state.name
        if name == pybreaker.STATE_CLOSED:
            return self._generation
        if name == pybreaker.STATE_OPEN:
            opened_at = self._opened_at
            if opened_at is None:  # opened before we were attached, or by another process
                storage: Any = cb._state_storage  # no public accessor for opened_at
                opened_at = storage.opened_at
            if opened_at is not None:
                reopen_at = opened_at + timedelta(seconds=cb.reset_timeout)
                wait = (reopen_at - self._now()).total_seconds()
                if wait > 0:
                    raise circuit_open(self.name, ctx=ctx, operation=operation, retry_after=wait)
            cb.half_open()
        if self._trials >= self._max_trials:
            raise circuit_open(self.name, ctx=ctx, operation=operation, half_open=True)
        self._trials += 1
        return self._generation

    def _end_trial(self) -> None:
        if self._cb.current_state == pybreaker.STATE_HALF_OPEN and self._trials > 0:
            self._trials -= 1

    def on_success(self, token: int) -> None:
        """Record a success in pybreaker (may close a half-open breaker)."""
        if token != self._generation:
            return
        self._end_trial()
        with contextlib.suppress(pybreaker.CircuitBreakerError):
            self._cb.call(_succeed)

    def on_error(self, token: int, exc: BaseException) -> None:
        """Record ``exc`` in pybreaker if the classifier counts it; nothing if cancelled."""
        if is_cancellation(exc):
            self.on_cancel(token)
            return
        if not self._classifier(exc):
            self.on_success(token)
            return
        if token != self._generation:
            return
        self._end_trial()
        traceback = exc.__traceback__
        try:
            self._cb.call(_fail, exc)
        except BaseException as raised:
            if raised is not exc and not isinstance(raised, pybreaker.CircuitBreakerError):
                raise
        finally:
            exc.__traceback__ = traceback

    def on_cancel(self, token: int) -> None:
        """Record nothing; free the half-open trial slot."""
        if token == self._generation:
            self._end_trial()

    def __repr__(self) -> str:
        if self.name is None:
            return f"PyBreakerAdapter({self._cb.current_state})"
        return f"PyBreakerAdapter({self.name!r}, {self._cb.current_state})"
