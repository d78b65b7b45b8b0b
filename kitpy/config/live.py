"""Live settings: values that change while the service runs, validated before they are used.

A :class:`Live` holds one setting.  Hot paths read ``live.value`` -- a plain
attribute, so reading it costs what reading any attribute costs.  A source
(:class:`~kitpy.config.file.FileSettings`, :class:`~kitpy.config.etcd.EtcdSettings`)
or your own code calls :meth:`Live.set` with raw text; the text is converted
to the setting's type and checked, and only then swapped in.  A value that
fails is rejected (logged, counted) and the last good value stays.
:meth:`Live.reset` returns to the static value (a source does this when the
key is deleted).  Subscribers run after each change, to rebuild what depends
on the value (a breaker policy, a pool size).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from kitpy.config.convert import convert
from kitpy.config.types import Secret
from kitpy.metrics.instruments import Counter

__all__ = ["Live", "Rejection", "follow"]

T = TypeVar("T")
_log = logging.getLogger("kitpy.config")


class Rejection(ValueError):
    """A new value for a live setting that was refused; the last good value stayed."""

    def __init__(self, name: str, raw: object, source: str, reason: Exception) -> None:
        where = f" from {source}" if source else ""
        super().__init__(f"live setting {name}: rejected {raw!r}{where}: {reason}")
        self.name = name
        self.raw = raw
        self.source = source
        self.reason = reason


class Live(Generic[T]):
    """One setting that may change at run time; read :attr:`value` where it is used.

    ``type`` is what raw values are converted to (default: the type of
    ``value``; give it when ``value`` is ``None``, e.g. ``float | None``).
    ``check`` raises ``ValueError`` for a value of the right type that is still
    unacceptable.  ``on_reject`` receives each :class:`Rejection` (default: an
    error log on the ``kitpy.config`` logger); ``rejections`` is a counter
    incremented with label ``setting=<name>``.

    >>> rate = Live(10.0, name="rate_limit", check=lambda v: None if v > 0 else 1 / 0)
    >>> rate.set("25"), rate.value
    (True, 25.0)
    >>> rate.set("banana", source="etcd"), rate.value
    (False, 25.0)
    >>> rate.reset(); rate.value
    10.0
    """

    __slots__ = (
        "_check",
        "_on_reject",
        "_rejections",
        "_subscribers",
        "_type",
        "name",
        "static",
        "value",
    )

    def __init__(
        self,
        value: T,
        *,
        name: str,
        type: Any = None,
        check: Callable[[T], object] | None = None,
        on_reject: Callable[[Rejection], None] | None = None,
        rejections: Counter | None = None,
    ) -> None:
        self.value: T = value
        """The current value: read this on hot paths."""
        self.static: T = value
        """The value :meth:`reset` returns to (the one from static settings)."""
        self.name = name
        self._type = _type_of(value) if type is None else type
        self._check = check
        self._on_reject = on_reject or _log_rejection
        self._rejections = rejections.labels(setting=name) if rejections is not None else None
        self._subscribers: list[Callable[[T], object]] = []

    def set(self, raw: object, *, source: str = "") -> bool:
        """Convert and check ``raw``; swap it in and return True, or reject it and return False."""
        old = self.value
        try:
            new = convert(raw, self._type)
            if self._check is not None:
                self._check(new)
            self._swap(new)  # a subscriber that refuses the value (ValueError) rejects it too
        except (ValueError, TypeError, ArithmeticError) as exc:
            if self.value is not old:
                self._swap(old)
            shown = "***" if self._type is Secret else raw  # never log a secret
            self._reject(Rejection(self.name, shown, source, exc))
            return False
        return True

    def reset(self) -> None:
        """Return to the static value."""
        self._swap(self.static)

    def subscribe(self, subscriber: Callable[[T], object]) -> Callable[[], None]:
        """Call ``subscriber(new_value)`` after every change; returns an unsubscribe function.

        A subscriber may refuse a value by raising ``ValueError``: the setting
        goes back to its previous value and the new one is rejected.
        """
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def _swap(self, new: T) -> None:
        if new == self.value:
            return
        self.value = new
        for subscriber in list(self._subscribers):
            subscriber(new)

    def _reject(self, rejection: Rejection) -> None:
        if self._rejections is not None:
            self._rejections.inc()
        self._on_reject(rejection)

    def __repr__(self) -> str:
        return f"Live({self.name}={self.value!r})"


def _type_of(value: object) -> type:
    if value is None:
        raise TypeError("Live(None, ...) needs type=, e.g. type=float | None")
    return type(value)


def _log_rejection(rejection: Rejection) -> None:
    _log.error("%s", rejection)


def follow(value: T | Live[T], on_change: Callable[[T], object]) -> T:
    """The current value of a number-or-live option; a live one calls ``on_change`` on changes.

    This is how kitpy's limiters, breakers and retries take live settings:
    they read the value once and get told about changes, so their hot paths
    read plain attributes.  A bound method is held weakly (the object can go
    away); ``on_change`` may raise ``ValueError`` to refuse a value.

    Example::

        self._rate = follow(rate, self._set_rate)   # rate: float | Live[float]
    """
    if not isinstance(value, Live):
        return value
    if hasattr(on_change, "__self__") and hasattr(on_change, "__func__"):
        method = weakref.WeakMethod(on_change)

        def call(new: T) -> None:
            bound = method()
            if bound is not None:
                bound(new)

        value.subscribe(call)
    else:
        value.subscribe(on_change)
    return value.value
