"""The lifecycle of a service process: start servers, wait for a signal, stop in order.

No third-party imports: the HTTP and gRPC adapters are in :mod:`kitpy.lifecycle.http`
and :mod:`kitpy.lifecycle.grpc`; anything else that follows :class:`Server` can be
added with :meth:`Lifecycle.add`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import signal
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from kitpy.sd.registrar import Registrar

__all__ = ["DEFAULT_SIGNALS", "AsyncCloseable", "Lifecycle", "Server"]

DEFAULT_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)
"""What :meth:`Lifecycle.wait_for_signal` waits for."""

T = TypeVar("T")
C = TypeVar("C", bound="AsyncCloseable")


class Server(Protocol):
    """A started server, as :class:`Lifecycle` stops it, in three steps.

    The adapters (:func:`kitpy.lifecycle.http.serve_http`,
    :func:`kitpy.lifecycle.grpc.serve_grpc`) make one; another transport
    implements these three methods and is added with :meth:`Lifecycle.add`.
    """

    async def set_not_serving(self) -> str | None:
        """Report NOT_SERVING to health checks; say where (``"/healthz 503"``), or None."""
        ...

    async def stop_accepting(self) -> None:
        """Close the listeners: new connections (or calls) are refused from now on."""
        ...

    async def finish(self) -> None:
        """Return once the calls in flight are done, cancelling any still running at grace."""
        ...


class AsyncCloseable(Protocol):
    """Anything with ``async close()``: an aiohttp session, a grpc.aio channel, a client."""

    def close(self) -> Awaitable[object]:
        """Release it."""
        ...


class Lifecycle:
    """Runs a service process: servers, registrations, clean-up, and the order they stop in.

    Used as an async context manager.  Inside, start servers with the adapters,
    register in service discovery, say what to flush and close, and wait for
    SIGINT/SIGTERM.  On the way out -- after a signal, or when the body raises --
    it stops in this order, announcing each step as ``"<name>: <step>"``:

    1. every server reports NOT_SERVING (``/healthz`` 503, gRPC health);
    2. every registration is removed (last registered first);
    3. ``drain`` seconds pass, still serving, so callers and balancers notice;
    4. every listener closes at once, and calls in flight get up to ``grace``
       seconds to finish (then they are cancelled);
    5. the :meth:`on_shutdown` callbacks run in the order given (flush spans);
    6. what :meth:`close` and :meth:`enter` took is closed, last taken first.

    A failing step is announced and the rest still run; the first failure is
    raised at the end (the body's own exception wins).

    Example::

        async with Lifecycle(name="stringsvc", drain=1.0, grace=10.0) as life:
            session = life.close(aiohttp.ClientSession())
            life.on_shutdown(tracer_provider.shutdown, "spans flushed")
            http = await serve_http(life, app, host="127.0.0.1", port=8080, health=health)
            await serve_grpc(life, grpc_server, address="127.0.0.1:8081")
            await life.register(registrar, "127.0.0.1:8080 in etcd://127.0.0.1:2379")
            await life.wait_for_signal()
    """

    def __init__(
        self,
        *,
        name: str,
        drain: float = 1.0,
        grace: float = 10.0,
        announce: Callable[[str], None] = print,
        signals: Sequence[signal.Signals] = DEFAULT_SIGNALS,
    ) -> None:
        if drain < 0 or grace < 0:
            raise ValueError("drain and grace are seconds >= 0")
        self.name = name
        self.drain = drain
        self.grace = grace
        self.signals = tuple(signals)
        self._announce = announce
        self._servers: list[Server] = []
        self._registrations: list[tuple[Registrar, str]] = []
        self._flushes: list[tuple[Callable[[], object], str]] = []
        self._resources = contextlib.AsyncExitStack()
        self._stopped = False

    def announce(self, step: str) -> None:
        """Announce ``step`` as ``"<name>: <step>"`` (the ``announce`` callable given)."""
        self._announce(f"{self.name}: {step}")

    # -- while running ---------------------------------------------------------------

    def add(self, server: Server, listening: str | None = None) -> None:
        """Stop ``server`` (already started) on the way out; announce ``listening`` now."""
        self._servers.append(server)
        if listening is not None:
            self.announce(listening)

    async def register(self, registrar: Registrar, description: str) -> None:
        """Register now (``registered <description>``); deregister first on the way out."""
        await registrar.register()
        self._registrations.append((registrar, description))
        self.announce(f"registered {description}")

    def on_shutdown(self, callback: Callable[[], object], done: str) -> None:
        """Call ``callback`` (plain or async) after the servers stop, then announce ``done``.

        For telemetry: ``life.on_shutdown(tracer_provider.shutdown, "spans flushed")``.
        """
        self._flushes.append((callback, done))

    def close(self, resource: C) -> C:
        """Close ``resource`` (``await resource.close()``) last; return it.

        Example: ``session = life.close(aiohttp.ClientSession())``.
        """
        self._resources.push_async_callback(_close, resource)
        return resource

    async def enter(self, manager: AbstractAsyncContextManager[T]) -> T:
        """Enter ``manager`` now and exit it with what :meth:`close` took (last in, first out)."""
        return await self._resources.enter_async_context(manager)

    async def wait_for_signal(self) -> signal.Signals:
        """Wait for SIGINT or SIGTERM (``signals``); announce it and return it.

        The handlers are installed only while waiting.
        """
        loop = asyncio.get_running_loop()
        received: asyncio.Future[signal.Signals] = loop.create_future()

        def on_signal(sig: signal.Signals) -> None:
            if not received.done():
                received.set_result(sig)

        for sig in self.signals:
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            sig = await received
        finally:
            for installed in self.signals:
                loop.remove_signal_handler(installed)
        self.announce(f"{sig.name} received, shutting down")
        return sig

    # -- stopping --------------------------------------------------------------------

    async def __aenter__(self) -> Lifecycle:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and not isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
            self.announce(f"{type(exc).__name__} raised, shutting down")
        failures = await self.stop()
        if failures and exc is None:
            raise failures[0]

    async def stop(self) -> list[Exception]:
        """Run the stop steps once, in order (``async with`` does it); return what failed."""
        if self._stopped:
            return []
        self._stopped = True
        failures: list[Exception] = []

        async def attempt(action: Awaitable[object], what: str) -> object:
            try:
                return await action
            except Exception as exc:  # announced; the remaining steps still run
                failures.append(exc)
                self.announce(f"{what} failed: {type(exc).__name__}: {exc}")
                return _FAILED

        places = [await attempt(s.set_not_serving(), "NOT_SERVING") for s in self._servers]
        where = ", ".join(p for p in places if isinstance(p, str))
        self.announce(f"NOT_SERVING ({where})" if where else "NOT_SERVING")

        for registrar, description in reversed(self._registrations):
            if await attempt(registrar.deregister(), f"deregistering {description}") is None:
                self.announce(f"deregistered {description}")

        if self.drain > 0:
            self.announce(f"draining for {self.drain:g} s: still serving while callers notice")
            await asyncio.sleep(self.drain)

        if self._servers:
            await asyncio.gather(
                *(attempt(s.stop_accepting(), "closing listeners") for s in self._servers)
            )
            grace = f"{self.grace:g}"
            self.announce(f"refusing new connections; in-flight requests get up to {grace} s")
            await asyncio.gather(*(attempt(s.finish(), "finishing calls") for s in self._servers))
            self.announce("servers stopped, in-flight requests done")

        for callback, done in self._flushes:
            if await attempt(_call(callback), done) is None:
                self.announce(done)

        if await attempt(self._resources.aclose(), "closing clients") is None:
            self.announce("client sessions and channels closed")
        self.announce("stopped")
        return failures


_FAILED = object()
"""What a failed step returns (a step that succeeds returns None)."""


async def _close(resource: AsyncCloseable) -> None:
    await resource.close()


async def _call(callback: Callable[[], object]) -> None:
    result = callback()
    if inspect.isawaitable(result):
        await result
