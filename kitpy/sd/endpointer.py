"""The :class:`Endpointer`: one live endpoint per discovered instance.

It subscribes to an :class:`~kitpy.sd.Instancer` and, for each instance that
appears, asks the caller's ``factory(instance)`` for ``(endpoint, closer)``,
typically an HTTP or gRPC client endpoint aimed at that address plus the
function that releases it.  When an instance leaves, its closer runs.  This is
how kitpy.sd stays free of transports: it never builds a client itself.

On an instancer *error* it keeps serving the last good set (a registry outage
must not become a service outage) unless ``invalidate_on_error`` seconds pass
without recovery, after which the set is emptied and calls fail fast with
``Unavailable``.  A factory error skips that one instance and is reported
through ``on_error``; the others are still served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Generic

from kitpy.context import Clock
from kitpy.endpoint import Endpoint, Req, Resp
from kitpy.sd.instance import Instance
from kitpy.sd.instancer import Event, Instancer

__all__ = ["Closer", "Endpointer", "ErrorReporter", "Factory"]

Closer = Callable[[], Awaitable[None]]
"""Releases what a factory built for one instance (a session, a channel)."""

Factory = Callable[[Instance], tuple[Endpoint[Req, Resp], Closer | None]]
"""``factory(instance) -> (endpoint, closer or None)``; may raise to skip the instance."""

_Made = tuple[Endpoint[Req, Resp], Closer | None]

ErrorReporter = Callable[[Instance | None, BaseException], None]
"""Told about factory, closer and instancer errors: (instance or None, error).

An Endpointer reports the first error of an instancer outage only; the
backend's own reporter sees every failed attempt."""

_log = logging.getLogger("kitpy.sd")


def _log_error(instance: Instance | None, error: BaseException) -> None:
    where = f" for {instance!r}" if instance is not None else ""
    _log.warning("service discovery error%s: %r", where, error)


class Endpointer(Generic[Req, Resp]):
    """Keeps ``endpoints`` in step with an instancer's instance set.

    Example::

        def factory(instance: Instance) -> tuple[Endpoint[Req, Resp], Closer]:
            client = make_client(f"http://{instance.address}")
            return client, client.close

        async with Endpointer(instancer, factory) as endpointer:
            balancer = P2C(endpointer)
            ...

    ``invalidate_on_error``: seconds an instancer error may last before the
    endpoint set is dropped (None: keep the last good set for ever).
    ``on_error`` receives factory/closer/instancer errors (default: a warning
    on the ``kitpy.sd`` logger).  ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        instancer: Instancer,
        factory: Factory[Req, Resp],
        *,
        invalidate_on_error: float | None = None,
        on_error: ErrorReporter | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        if invalidate_on_error is not None and invalidate_on_error < 0:
            raise ValueError("invalidate_on_error must be >= 0 seconds or None")
        self._instancer = instancer
        self._factory = factory
        self._invalidate_after = invalidate_on_error
        self._on_error = on_error or _log_error
        self._clock = clock
        self._cache: dict[Instance, _Made[Req, Resp]] = {}
        self._instances: tuple[Instance, ...] = ()
        self._endpoints: tuple[Endpoint[Req, Resp], ...] = ()
        self._invalidate_at: float | None = None
        self._error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._closing: set[asyncio.Task[None]] = set()
        self._stale: list[tuple[Instance, Closer]] = []

    # -- reading ---------------------------------------------------------------

    @property
    def endpoints(self) -> Sequence[Endpoint[Req, Resp]]:
        """The current endpoints, one per instance (the same tuple until the set changes)."""
        if self._invalidate_at is not None and self._clock() >= self._invalidate_at:
            self._invalidate()
        return self._endpoints

    @property
    def instances(self) -> Sequence[Instance]:
        """The instances behind :attr:`endpoints`, in the same order."""
        if self._invalidate_at is not None and self._clock() >= self._invalidate_at:
            self._invalidate()
        return self._instances

    @property
    def error(self) -> BaseException | None:
        """The instancer's last error while it has not recovered, else None."""
        return self._error

    async def wait_for(self, predicate: Callable[[Sequence[Instance]], bool]) -> None:
        """Return once ``predicate(self.instances)`` is true; bound it with a timeout.

        Example::

            async with asyncio.timeout(5):
                await endpointer.wait_for(lambda instances: len(instances) >= 1)
        """
        while not predicate(self.instances):
            await self._changed.wait()

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        """Start following the instancer (needs a running event loop; idempotent)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Stop following the instancer and close every endpoint."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._apply({})
        stale, self._stale = self._stale, []
        for instance, closer in stale:
            await self._close_one(instance, closer)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    async def __aenter__(self) -> Endpointer[Req, Resp]:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- following the instancer ----------------------------------------------

    async def _run(self) -> None:
        stream = self._instancer.subscribe()
        try:
            async for event in stream:
                await self._handle(event)
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _handle(self, event: Event) -> None:
        if event.error is not None:
            if self._error is None:  # report once per outage, not once per retry
                self._on_error(None, event.error)
            self._error = event.error
            if self._invalidate_after is not None and self._invalidate_at is None:
                self._invalidate_at = self._clock() + self._invalidate_after
            self._notify()
            return
        self._error = None
        self._invalidate_at = None
        wanted: dict[Instance, _Made[Req, Resp]] = {}
        for instance in event.instances:
            made = self._cache.get(instance)
            if made is None:
                try:
                    made = self._factory(instance)
                except Exception as exc:
                    self._on_error(instance, exc)
                    continue
            wanted[instance] = made
        await self._apply(wanted)

    async def _apply(self, wanted: dict[Instance, _Made[Req, Resp]]) -> None:
        gone = [(i, made[1]) for i, made in self._cache.items() if i not in wanted]
        self._cache = wanted
        self._instances = tuple(wanted)
        self._endpoints = tuple(made[0] for made in wanted.values())
        self._notify()
        for instance, closer in gone:
            if closer is not None:
                await self._close_one(instance, closer)

    async def _close_one(self, instance: Instance, closer: Closer) -> None:
        try:
            await closer()
        except Exception as exc:
            self._on_error(instance, exc)

    def _invalidate(self) -> None:
        """Drop every endpoint after a long instancer error (closers run in the background)."""
        self._invalidate_at = None
        gone = list(self._cache.items())
        self._cache = {}
        self._instances = ()
        self._endpoints = ()
        self._notify()
        closers = [(i, closer) for i, (_, closer) in gone if closer is not None]
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # read outside the loop: close() runs them later
            self._stale.extend(closers)
            return
        for instance, closer in closers:
            task = loop.create_task(self._close_one(instance, closer))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
