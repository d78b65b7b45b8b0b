"""The request Context: immutable, explicit, typed values and a deadline.

Every endpoint takes a :class:`Context` as its first argument.  Transports fill it
(headers, peer, request id, trace context), middleware reads and extends it (JWT
claims, a narrower deadline), and it is never shared mutable state: every
``with_*`` method returns a new Context and leaves the original untouched.

Cancellation is asyncio's own (cancel the task); the Context only carries the
*deadline*, so that it can travel across process boundaries and every layer can
ask "how long do I have left?".

Example::

    REQUEST_ID: Key[str] = Key("request_id")

    ctx = Context().with_value(REQUEST_ID, "r-1").with_timeout(0.5)
    ctx[REQUEST_ID]          # "r-1"
    ctx.time_remaining()     # ~0.5, falling
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar, overload

__all__ = [
    "ENDPOINT_ERROR",
    "ENDPOINT_NAME",
    "OPERATION",
    "OPERATION_SOURCE",
    "REQUEST_ID",
    "REQUEST_ID_SOURCE",
    "Authenticate",
    "Clock",
    "Context",
    "Key",
]

T = TypeVar("T")
D = TypeVar("D")

Clock = Callable[[], float]
"""A monotonic clock in seconds, such as :func:`time.monotonic`."""

Authenticate = Callable[["Context"], Awaitable["Context"]]
"""A Server's ``authenticate`` option: checks the caller before the request is read.

Returns the Context the endpoint gets (e.g. with the token's claims) or
raises (UNAUTHENTICATED); e.g. ``JWTParser.authenticate``.
"""

_MISSING: Any = object()


class Key(Generic[T]):
    """A typed key for a :class:`Context` value.

    Keys compare by identity: two ``Key("user")`` objects are different keys, so a
    library's keys never collide with an application's.  The name is only for
    ``repr`` and error messages.

    A key may be *derived*: when a Context holds no value of its own for the
    key, ``derive(ctx)`` computes one (None means absent).  Transports use this
    to offer many values (path, peer, headers...) while a request pays only for
    those that are read.  ``derive`` must be cheap and give the same answer
    every time for the same Context; a value set with
    :meth:`Context.with_value` takes precedence over it.

    Example::

        USER: Key[str] = Key("user")
        ctx = Context().with_value(USER, "ada")
        assert ctx.get(USER) == "ada"

        GREETING: Key[str] = Key("greeting", derive=lambda c: f"hi {c.get(USER)}")
        assert ctx[GREETING] == "hi ada"
    """

    __slots__ = ("derive", "name")

    def __init__(self, name: str, *, derive: Callable[[Context], T | None] | None = None) -> None:
        self.name = name
        self.derive = derive

    def __repr__(self) -> str:
        return f"Key({self.name!r})"


REQUEST_ID_SOURCE: Key[Callable[[Context], str]] = Key("request_id_source")
"""For transports: the function that makes :data:`REQUEST_ID` when it is first read.

A transport stores one function per server (not per request) and whatever it
needs in the Context; the function must give the same id every time for the
same request (e.g. the incoming header, else a number the server gave the
request).  Requests whose id nobody reads then cost no id at all.
"""


def _request_id(ctx: Context) -> str | None:
    # the dict itself, not ctx.get: a Context without a request id (a unit test, a background
    # job) is the common miss, and call_logging asks on every call
    source = ctx._values.get(REQUEST_ID_SOURCE)
    return None if source is None else source(ctx)


REQUEST_ID: Key[str] = Key("request_id", derive=_request_id)
"""The request id (e.g. the incoming ``X-Request-Id``) that transports put in the Context.

Transport-neutral, so middleware such as logging reads it without importing a
transport.  A value set with ``with_value`` wins; otherwise the id comes from
the transport's :data:`REQUEST_ID_SOURCE`.
"""


OPERATION_SOURCE: Key[Callable[[Context], str | None]] = Key("operation_source")
"""For transports: the function that names the operation being served when it is first read.

Like :data:`REQUEST_ID_SOURCE`, one function per server; a transport that
knows the name up front sets :data:`OPERATION` itself instead.
"""


def _operation(ctx: Context) -> str | None:
    source = ctx._values.get(OPERATION_SOURCE)  # the dict itself, as in _request_id
    return None if source is None else source(ctx)


OPERATION: Key[str] = Key("operation", derive=_operation)
"""The operation a transport is serving: ``"POST /uppercase"`` or ``"/pkg.Service/Method"``.

Transport-neutral, so logging, metrics and tracing can name a call whose
endpoint carries no name (see :func:`kitpy.endpoint.endpoint_name`) without
importing a transport.  Absent outside a transport (e.g. in a unit test).
"""


ENDPOINT_ERROR: Key[bool] = Key("endpoint_error")
"""In the Context a Server's ``error_handler`` gets: whether the endpoint raised the error.

False when the error came from the Server's own steps -- a bad timeout
header, a ``before`` func, decoding the request, encoding the response --
which the endpoint's middleware (``call_logging``, ``call_metrics``) never
saw.  Error handlers such as :func:`kitpy.log.server_error_logging` use it to
report those errors without reporting an endpoint's error a second time.
"""

ENDPOINT_NAME: Key[str] = Key("endpoint_name")
"""In the Context a Server's ``error_handler`` gets: the name of the endpoint it serves.

The name given with :func:`kitpy.endpoint.named` (absent for an unnamed
endpoint), so an error the Server raised is reported under the same name the
endpoint's own middleware uses.
"""


# Context._derive makes children without __init__; by a module name, ~200 instructions less
_new_object = object.__new__


class Context:
    """An immutable bag of typed values plus an optional deadline.

    ``Context()`` is the root: no values, no deadline.  Values live in a small
    dict that :meth:`with_value` copies, so a lookup is O(1) and adding a value
    is O(n) in the number of values already present (a handful in practice,
    copied in well under a microsecond).

    The deadline is a point on ``clock`` (``time.monotonic`` unless the root was
    given another clock, e.g. a fake clock in tests).  A child never extends its
    parent's deadline: :meth:`with_deadline` and :meth:`with_timeout` keep the
    earlier of the two.
    """

    __slots__ = ("_clock", "_deadline", "_values")

    _values: dict[Key[Any], Any]
    _deadline: float | None
    _clock: Clock

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self._values = {}
        self._deadline = None
        self._clock = clock

    def _derive(self, values: dict[Key[Any], Any], deadline: float | None) -> Context:
        """The one internal constructor: a child with ``values`` (owned) and ``deadline``."""
        child = _new_object(Context)
        child._values = values
        child._deadline = deadline
        child._clock = self._clock
        return child

    # -- values -----------------------------------------------------------------

    def with_value(self, key: Key[T], value: T) -> Context:
        """Return a child Context in which ``key`` maps to ``value``."""
        values = self._values.copy()
        values[key] = value
        return self._derive(values, self._deadline)

    def with_values(self, items: dict[Key[Any], Any], *, timeout: float | None = None) -> Context:
        """Return a child Context with several values set at once, and optionally a timeout.

        One copy and one new Context however many values are set: this is how a
        transport makes a request's Context from its Server's root.  The dict is
        not type-checked per key; prefer :meth:`with_value` in application code.
        ``timeout`` narrows the deadline as :meth:`with_timeout` does.

        Example::

            ctx = root.with_values({PEER: "10.0.0.7:5123"}, timeout=0.25)
        """
        if self._values:
            values = self._values.copy()
            values.update(items)
        else:
            values = items.copy()
        deadline = self._deadline
        if timeout is not None:
            due = self._clock() + timeout
            if deadline is None or due < deadline:
                deadline = due
        return self._derive(values, deadline)

    @overload
    def get(self, key: Key[T]) -> T | None: ...

    @overload
    def get(self, key: Key[T], default: D) -> T | D: ...

    def get(self, key: Key[Any], default: Any = None) -> Any:
        """Return the value for ``key``, or ``default`` (None) when it is absent."""
        value = self._values.get(key, _MISSING)
        if value is _MISSING:
            derive = key.derive
            if derive is None or (value := derive(self)) is None:
                return default
        return value

    def __getitem__(self, key: Key[T]) -> T:
        value = self._values.get(key, _MISSING)
        if value is _MISSING:
            derive = key.derive
            if derive is None or (value := derive(self)) is None:
                raise KeyError(f"context has no value for key {key.name!r}")
        result: T = value
        return result

    def __contains__(self, key: object) -> bool:
        if key in self._values:
            return True
        return isinstance(key, Key) and key.derive is not None and key.derive(self) is not None

    # -- deadline ---------------------------------------------------------------

    @property
    def clock(self) -> Clock:
        """The monotonic clock the deadline is measured on."""
        return self._clock

    @property
    def deadline(self) -> float | None:
        """The deadline as a ``clock`` reading, or None when unbounded."""
        return self._deadline

    def with_deadline(self, deadline: float) -> Context:
        """Return a child whose deadline is ``deadline`` or the parent's, whichever is earlier."""
        current = self._deadline
        if current is not None and current <= deadline:
            return self
        return self._derive(self._values, deadline)

    def with_timeout(self, seconds: float) -> Context:
        """Return a child due ``seconds`` from now, or at the parent's deadline if sooner."""
        return self.with_deadline(self._clock() + seconds)

    def time_remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), or None when unbounded."""
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - self._clock())

    @property
    def expired(self) -> bool:
        """True when a deadline is set and has passed."""
        return self._deadline is not None and self._clock() >= self._deadline

    def __repr__(self) -> str:
        names = ", ".join(k.name for k in self._values)
        remaining = self.time_remaining()
        budget = "" if remaining is None else f", remaining={remaining:.3f}s"
        return f"Context(keys=[{names}]{budget})"
