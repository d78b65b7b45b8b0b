"""Run a grpc.aio server with kitpy services, the standard health service and graceful stop.

:class:`GrpcServer` owns one ``grpc.aio.Server`` with the standard
``grpc.health.v1.Health`` service (from grpcio-health-checking) registered.
Services are added with their generated ``add_XServicer_to_server`` function;
each is reported SERVING once the server has started, and so is the overall
health (service name ``""``).  With ``reflection=True`` the standard server
reflection service (``grpc.reflection.v1alpha.ServerReflection``, from
grpcio-reflection) lists them too, so ``grpcurl`` and ``grpcui`` work without
the .proto files.

Bad request bytes are answered INVALID_ARGUMENT with a short message (plain
grpc.aio answers UNKNOWN and the protobuf parser's text): ``add_service``
parses unary requests itself, at no extra cost on the good path.  It also
lets a handler be a kitpy :class:`~kitpy.transport.grpc.Server` or
:class:`~kitpy.transport.grpc.StreamServer` object itself, which then parses
its request messages itself (plain grpc.aio only awaits ``async def``
functions, so with a bare ``grpc.aio.server`` delegate to the Server from an
``async def`` method, as a generated servicer subclass does).  A StreamServer
whose ``kind`` is not its method's fails ``add_service`` with a ``TypeError``
(or, registered by a generic handler alone, its method's first call).

:meth:`GrpcServer.stop` stops gracefully and loses no call: health turns
NOT_SERVING for every service (so health-checking load balancers stop sending)
and open health ``Watch`` streams end; an optional ``drain`` pause lets callers
notice; then every new call is refused with UNAVAILABLE and the message
``server shutting down: call not started``, which clients may safely retry
elsewhere (the application never saw the call), while the calls in flight get
``grace`` seconds to finish; only then does grpc.aio stop (its own stop
cancels calls it has received but not yet started, so it must come last).
Calls still running after ``grace`` are cancelled.  Each refused call is shown
to ``error_handler``, so it is logged and counted like any other error::

    server = GrpcServer()
    server.add_service("stringsvc.v1.StringService",
                       pb_grpc.add_StringServiceServicer_to_server, StringServicer(endpoints))
    port = await server.start("127.0.0.1:8081")
    ...
    await server.stop(grace=5.0)

Limits, each a keyword of :class:`GrpcServer` (docs/reliability.md has the
reasons and figures): at most ``max_concurrent_streams`` calls at once per
connection (256; the client queues the rest), ``max_pending_calls`` calls
received but not yet started (10,000), requests of ``max_receive_message_length``
bytes (4 MiB), client pings no closer than ``min_ping_interval`` seconds
without calls in between (300 s; ``max_ping_strikes`` = 2 offences close the
connection), idle connections closed after ``max_connection_idle`` (300 s) and
every connection after ``max_connection_age`` (1800 s, plus
``max_connection_age_grace`` = 30 s for its calls).  An entry of ``options``
with the same grpc name wins over the keyword.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import os
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kitpy.context import OPERATION, REQUEST_ID, Context
from kitpy.errors import Unavailable

from .health import HealthServicer
from .metadata import METHOD, incoming_request_id
from .server import CALL_PAIRS, ErrorHandler, Server
from .stream import StreamServer

__all__ = ["REFUSED_MESSAGE", "GrpcServer"]

S = TypeVar("S")

_INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
_UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
_MIB = 1 << 20
# GrpcServer.stop's timing (docs/decisions.md, "Hardening (issue 24)", has the measurements)
_SETTLE = 0.05
"""Once the calls in flight are done, stop waits until no new call has come for this long..."""
_MAX_SETTLE = 1.0
"""... but no longer than this (calls sent whatever the answers never stop coming)."""
_GOAWAY_HEAD_START = 0.02
"""Seconds between grpc.aio's stop (it sends GOAWAY) and answering the held calls."""
_ANSWER_TIME = 0.1
"""What grpc.aio's stop gets beyond the grace, to send the held calls their answers."""
_ANSWER_MARGIN = 0.25
"""A held call is answered this long before its deadline (UNAVAILABLE, not DEADLINE_EXCEEDED)."""

REFUSED_MESSAGE = "server shutting down: call not started"
"""The UNAVAILABLE message of a call refused while :class:`GrpcServer` stops (safe to retry)."""


class GrpcServer:
    """A grpc.aio server plus the standard health service, started and stopped as one.

    ``options``, ``interceptors`` and ``maximum_concurrent_rpcs`` go to
    ``grpc.aio.server``.  Unlike grpc's default, ``grpc.so_reuseport`` is off
    unless ``options`` turn it on, so a second process on a port in use fails
    to start instead of silently sharing the port.  The underlying server is
    :attr:`server` and the health servicer :attr:`health` (e.g. to report a
    dependency outage with ``await server.health.set(name, NOT_SERVING)``).

    ``reflection=True`` serves gRPC server reflection for the services added,
    health and reflection itself (off by default: it tells any caller the
    whole API).

    The limits (see the module docstring; seconds for times, None for no
    limit where allowed) become grpc channel arguments:

    * ``max_concurrent_streams`` -- ``grpc.max_concurrent_streams``, calls at
      once per connection, announced to the client, which queues the rest.
      With it ``grpc.http.overload_protection`` is off: on, grpc counts the
      streams Python has not yet freed too, and refuses calls of a client that
      kept to the limit (UNAVAILABLE, "RST_STREAM with error code 7").
    * ``max_pending_calls`` -- ``grpc.server.max_pending_requests`` and its
      ``_hard_limit``: calls grpc has received that grpc.aio has not yet
      started.  Beyond it grpc cancels calls before any handler sees them
      (CANCELLED, logged nowhere); grpc's own 1,000..3,000 did that to a burst
      of 2,000 calls on one connection.
    * ``max_receive_message_length`` -- ``grpc.max_receive_message_length``;
      a larger request is RESOURCE_EXHAUSTED.
    * ``min_ping_interval``, ``max_ping_strikes``,
      ``permit_keepalive_without_calls`` -- keepalive enforcement
      (``grpc.http2.min_ping_interval_without_data_ms``,
      ``grpc.http2.max_ping_strikes``, ``grpc.keepalive_permit_without_calls``):
      a client that pings more often gets GOAWAY ``too_many_pings``.
    * ``max_connection_idle`` -- ``grpc.max_connection_idle_ms``: a
      connection without calls that long gets GOAWAY (the client reconnects
      when it next calls).
    * ``max_connection_age`` and ``max_connection_age_grace`` --
      ``grpc.max_connection_age_ms`` (grpc adds +-10% jitter) and
      ``grpc.max_connection_age_grace_ms``: then GOAWAY, calls on the
      connection get the grace, new ones go to a new connection (clients
      re-resolve and spread over instances).

    ``error_handler`` (the kitpy Server's type, e.g. ``server_error_logging``)
    sees every call this server refuses itself -- while stopping, UNAVAILABLE
    -- with a Context holding :data:`~kitpy.context.OPERATION`, ``METHOD`` and
    :data:`~kitpy.context.REQUEST_ID`.

    Example::

        server = GrpcServer(reflection=True, max_concurrent_streams=100)
    """

    def __init__(
        self,
        *,
        options: Sequence[tuple[str, Any]] = (),
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
        maximum_concurrent_rpcs: int | None = None,
        reflection: bool = False,
        max_concurrent_streams: int | None = 256,
        max_pending_calls: int = 10_000,
        max_receive_message_length: int = 4 * _MIB,
        min_ping_interval: float = 300.0,
        max_ping_strikes: int = 2,
        permit_keepalive_without_calls: bool = False,
        max_connection_idle: float | None = 300.0,
        max_connection_age: float | None = 1800.0,
        max_connection_age_grace: float = 30.0,
        error_handler: ErrorHandler | None = None,
    ) -> None:
        limits = _limits(
            max_concurrent_streams=max_concurrent_streams,
            max_pending_calls=max_pending_calls,
            max_receive_message_length=max_receive_message_length,
            min_ping_interval=min_ping_interval,
            max_ping_strikes=max_ping_strikes,
            permit_keepalive_without_calls=permit_keepalive_without_calls,
            max_connection_idle=max_connection_idle,
            max_connection_age=max_connection_age,
            max_connection_age_grace=max_connection_age_grace,
        )
        opts = tuple(options)
        given = {name for name, _ in opts}
        opts += tuple((name, value) for name, value in limits if name not in given)
        self.options: tuple[tuple[str, Any], ...] = opts
        """The channel arguments the grpc.aio server was made with."""
        self.server: grpc.aio.Server = grpc.aio.server(
            options=opts,
            interceptors=tuple(interceptors) or None,
            maximum_concurrent_rpcs=maximum_concurrent_rpcs,
        )
        self.health = HealthServicer()
        # grpc.aio builds the metadata for the handler lookup; the router passes it on to the
        # call, unless an interceptor stands between (it may hand the lookup other metadata)
        self._router = _Router(share_pairs=not interceptors, error_handler=error_handler)
        self.server.add_generic_rpc_handlers((self._router,))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._registrar())
        self._services: list[str] = []
        self._reflection = reflection
        self._started = False
        self._stopped: asyncio.Task[None] | None = None

    @property
    def services(self) -> tuple[str, ...]:
        """The full names of the services added (health not included)."""
        return tuple(self._services)

    @property
    def calls_in_flight(self) -> int:
        """Calls started and not yet finished (open streams, health Watch included)."""
        return len(self._router.in_flight())

    def add_service(self, name: str, add_to_server: Callable[[S, Any], None], servicer: S) -> None:
        """Register ``servicer`` with its generated ``add_..._to_server`` function.

        ``name`` is the full service name (``"package.Service"``), used for
        health.  Must be called before :meth:`start`.
        """
        if self._started:
            raise RuntimeError("add services before starting the server")
        add_to_server(servicer, self._registrar())
        self._services.append(name)

    def _registrar(self) -> grpc.aio.Server:
        """Where generated ``add_..._to_server`` functions register (typed as the server)."""
        return cast("grpc.aio.Server", _Registrar(self._router))

    async def start(self, address: str = "127.0.0.1:0") -> int:
        """Listen on ``address`` (``host:port``; port 0 picks one), start, return the port.

        Every added service and the overall health (``""``) then report SERVING.
        """
        if self._reflection and not self._started:
            self._add_reflection()
        try:
            port = self.server.add_insecure_port(address)
        except RuntimeError as exc:  # grpc gives no reason; in use or not an address
            raise OSError(f"gRPC server could not listen on {address}: {exc}") from exc
        self._router.loop = asyncio.get_running_loop()  # where the calls will run
        await self.server.start()
        self._started = True
        for service in ("", *self._services):
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        return port

    def _add_reflection(self) -> None:
        """Serve reflection for every service added, health and reflection itself."""
        from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

        names = (
            *self._services,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        )
        servicer = reflection.aio.ReflectionServicer(names)
        # the stubs leave the generated registration function untyped
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(  # type: ignore[no-untyped-call]
            servicer, self._registrar()
        )

    async def set_not_serving(self) -> None:
        """Health NOT_SERVING for every service, for good; open health Watch streams end."""
        await self.health.enter_graceful_shutdown()

    async def stop(self, *, grace: float = 5.0, drain: float = 0.0) -> None:
        """Stop gracefully (see the module docstring); calls in flight get ``grace`` s.

        In order: health NOT_SERVING (health Watch streams end); ``drain``
        seconds still serving; new calls refused (each is answered UNAVAILABLE
        once grpc.aio has begun to stop, or just before its deadline, so that
        its client's next call goes elsewhere); up to ``grace`` seconds for the
        calls in flight; grpc.aio's stop, which closes the listener and cancels
        any call still running.  Calling it again waits for the same stop.
        """
        if self._stopped is None:
            caller = asyncio.current_task()  # a handler that stops the server is not waited for
            self._stopped = asyncio.ensure_future(self._stop(grace, drain, caller))
        await asyncio.shield(self._stopped)

    async def _stop(self, grace: float, drain: float, caller: asyncio.Task[Any] | None) -> None:
        await self.set_not_serving()
        if drain > 0:
            await asyncio.sleep(drain)
        router, refuser = self._router, self._router.refuser
        router.refusing = True
        loop = asyncio.get_running_loop()
        until = loop.time() + grace
        while (calls := [c for c in router.in_flight() if c is not caller]) and loop.time() < until:
            await asyncio.wait(calls, timeout=until - loop.time())
        # A caller whose call just finished sends its next one now: let it arrive (and be
        # held) rather than meet grpc.aio's stop, until no call came for _SETTLE seconds.
        done = loop.time()
        settle_until = min(until, done + _MAX_SETTLE)
        while (quiet := loop.time() - max(done, refuser.last_arrival)) < _SETTLE:
            if loop.time() >= settle_until:
                break
            await asyncio.sleep(min(_SETTLE - quiet, settle_until - loop.time()))
        # grpc.aio's stop sends GOAWAY and closes the listener at once; the held calls are
        # answered just after, so their clients' next calls go to a new connection.
        left = max(0.0, until - loop.time()) + _ANSWER_TIME
        stopping = asyncio.ensure_future(self.server.stop(left))
        await asyncio.sleep(_GOAWAY_HEAD_START)
        refuser.release()
        await stopping

    async def wait_for_termination(self) -> None:
        """Wait until the server has stopped (bound it with ``asyncio.timeout`` if needed)."""
        await self.server.wait_for_termination()


def _limits(
    *,
    max_concurrent_streams: int | None,
    max_pending_calls: int,
    max_receive_message_length: int,
    min_ping_interval: float,
    max_ping_strikes: int,
    permit_keepalive_without_calls: bool,
    max_connection_idle: float | None,
    max_connection_age: float | None,
    max_connection_age_grace: float,
) -> list[tuple[str, Any]]:
    """GrpcServer's limits as grpc channel arguments (checked: a bad one fails here)."""
    counts = {
        "max_concurrent_streams": max_concurrent_streams,
        "max_pending_calls": max_pending_calls,
        "max_receive_message_length": max_receive_message_length,
    }
    for name, count in counts.items():
        if count is not None and count < 1:
            raise ValueError(f"{name} must be at least 1, got {count}")
    if max_ping_strikes < 0:
        raise ValueError(f"max_ping_strikes must be >= 0 (0: no limit), got {max_ping_strikes}")
    args: list[tuple[str, Any]] = [
        ("grpc.so_reuseport", 0),
        ("grpc.server.max_pending_requests", max_pending_calls),
        ("grpc.server.max_pending_requests_hard_limit", max_pending_calls),
        ("grpc.max_receive_message_length", max_receive_message_length),
        (
            "grpc.http2.min_ping_interval_without_data_ms",
            _ms("min_ping_interval", min_ping_interval),
        ),
        ("grpc.http2.max_ping_strikes", max_ping_strikes),
        ("grpc.keepalive_permit_without_calls", int(permit_keepalive_without_calls)),
        (
            "grpc.max_connection_age_grace_ms",
            _ms("max_connection_age_grace", max_connection_age_grace),
        ),
    ]
    if max_concurrent_streams is not None:
        args.append(("grpc.max_concurrent_streams", max_concurrent_streams))
        args.append(("grpc.http.overload_protection", 0))
    if max_connection_idle is not None:
        args.append(
            ("grpc.max_connection_idle_ms", _ms("max_connection_idle", max_connection_idle))
        )
    if max_connection_age is not None:
        args.append(("grpc.max_connection_age_ms", _ms("max_connection_age", max_connection_age)))
    return args


def _ms(name: str, seconds: float) -> int:
    """``seconds`` as whole milliseconds for grpc (at most INT_MAX, grpc's "no limit")."""
    if seconds < 0:
        raise ValueError(f"{name} is seconds >= 0, got {seconds}")
    return min(round(seconds * 1000), 2**31 - 1)


_PRUNE_AT = 1024  # the router's list of calls is pruned at this length at the least


class _Router(grpc.GenericRpcHandler):
    """The one generic handler GrpcServer gives grpc.aio: it finds, guards and keeps handlers.

    The generic handlers the services registered (:attr:`inner`) are asked in
    order the first time a method is called; the guarded answer is kept by
    method name, so a later call costs one dict lookup.  Names no handler
    serves are not kept (a client can send any number of them).  Answers are
    kept whatever the call's metadata: a generic handler that chooses by
    metadata is asked only once per method.

    The lookup runs in the call's own task, just before its handler: so the
    router keeps the calls in flight (weak references to their tasks, each
    gone with its task) and, once :attr:`refusing`, answers every call it
    serves with a handler that refuses it (UNAVAILABLE).  With
    ``share_pairs`` each lookup puts the metadata grpc.aio built for it in
    :data:`~kitpy.transport.grpc.server.CALL_PAIRS`.
    """

    def __init__(self, *, share_pairs: bool, error_handler: ErrorHandler | None = None) -> None:
        self.inner: list[grpc.GenericRpcHandler] = []
        # Weak references without callbacks, in a list pruned when it has doubled: the tasks
        # themselves kept finished calls alive, and a callback per reference (to forget it when
        # its task is freed) cost ~1 % of a bare call (decisions.md)
        self._calls: list[weakref.ref[asyncio.Task[Any]]] = []
        self._prune_at = _PRUNE_AT
        self.refusing = False
        self._share_pairs = share_pairs
        self._found: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
        self._refusals: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
        self.refuser = _Refuser(error_handler)
        # the server's loop, once started: current_task(loop) skips get_running_loop(), whose
        # check of the process id is a getpid() system call per call
        self.loop: asyncio.AbstractEventLoop | None = None

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        if self._share_pairs:
            CALL_PAIRS.set(handler_call_details.invocation_metadata)
        found = self._found.get(handler_call_details.method)
        if found is None:
            found = self._find(handler_call_details)
        if self.refusing and found is not None:
            return self._refusal(handler_call_details.method, found)
        call = asyncio.current_task(self.loop)
        if call is not None:
            calls = self._calls
            calls.append(weakref.ref(call))
            if len(calls) >= self._prune_at:
                self._prune()
        return found

    def in_flight(self) -> list[asyncio.Task[Any]]:
        """The calls started and not yet finished."""
        tasks = (ref() for ref in self._calls)
        return [task for task in tasks if task is not None and not task.done()]

    def _prune(self) -> None:
        """Forget the calls that have finished; prune again once the list has doubled."""
        self._calls = live = [weakref.ref(task) for task in self.in_flight()]
        self._prune_at = max(_PRUNE_AT, 2 * len(live))

    def _refusal(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """A handler of ``handler``'s kind that refuses the call (made once per method)."""
        refusal = self._refusals.get(method)
        if refusal is None:
            refusal = self._refusals[method] = self.refuser.handler(method, handler)
        return refusal

    def serves(self, method: str) -> bool:
        """Whether one of the handlers registered so far serves ``method``."""
        return self._find(_CallDetails(method)) is not None

    def _find(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        for inner in self.inner:
            handler = inner.service(handler_call_details)
            if handler is not None:
                method = handler_call_details.method
                guarded = self._found[method] = _guard(handler, method)
                return guarded
        return None


class _Refuser:
    """Refuses calls while GrpcServer stops: UNAVAILABLE, shown to the error handler first.

    A refused call is held until :meth:`release` (GrpcServer calls it once
    grpc.aio has begun to stop and sent GOAWAY), or until just before its
    deadline: a client waiting for its answer sends no new call on the
    connection meanwhile, and grpc.aio's stop cancels calls that arrive while
    it begins (CANCELLED, which a client cannot tell safe to retry).
    """

    def __init__(self, error_handler: ErrorHandler | None) -> None:
        self._error_handler = error_handler
        self._released = asyncio.Event()
        self.last_arrival = 0.0
        """When the last refused call arrived (the event loop's clock)."""
        self._id_prefix = os.urandom(6).hex() + "-refused-"
        self._ids = itertools.count(1)

    def release(self) -> None:
        """Answer the held calls now, and each refused call from now on at once."""
        self._released.set()

    def handler(
        self, method: str, kind: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """A handler for ``method`` of the same streaming kind as ``kind`` that refuses calls."""

        async def refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
            await self.refuse(method, context)

        if kind.request_streaming and kind.response_streaming:
            return grpc.stream_stream_rpc_method_handler(refuse)
        if kind.request_streaming:
            return grpc.stream_unary_rpc_method_handler(refuse)
        if kind.response_streaming:
            return grpc.unary_stream_rpc_method_handler(refuse)
        return grpc.unary_unary_rpc_method_handler(refuse)

    async def refuse(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        """Hold the call, then abort it UNAVAILABLE with the request id (the client's, else new)."""
        self.last_arrival = asyncio.get_running_loop().time()
        pairs = context.invocation_metadata() or ()
        request_id = incoming_request_id(pairs) or f"{self._id_prefix}{next(self._ids)}"
        if not self._released.is_set():
            remaining = context.time_remaining()
            hold = None if remaining is None else max(0.0, remaining - _ANSWER_MARGIN)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(hold):
                    await self._released.wait()
        if self._error_handler is not None:
            values = {OPERATION: method, METHOD: method, REQUEST_ID: request_id}
            self._error_handler(Context().with_values(values), Unavailable(REFUSED_MESSAGE))
        await context.abort(_UNAVAILABLE, REFUSED_MESSAGE, (("x-request-id", request_id),))


class _Registrar:
    """What generated ``add_..._to_server`` functions register with: the server's router.

    Everything is served as a generic handler (see
    ``add_registered_method_handlers``); the router replaces each unary-unary
    handler whose behaviour is a coroutine function, and each streaming one
    whose behaviour is a StreamServer, with one that parses the request bytes
    itself, so a malformed request aborts with INVALID_ARGUMENT.
    """

    def __init__(self, router: _Router) -> None:
        self._router = router

    def add_generic_rpc_handlers(self, handlers: Iterable[grpc.GenericRpcHandler]) -> None:
        self._router.inner.extend(handlers)

    def add_registered_method_handlers(
        self, service: str, handlers: Mapping[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        # grpc.aio (1.85) waits on one future per *registered* method for every call it
        # serves, whatever the service: each registered method makes every call dearer
        # (docs/decisions.md has the figure for the health service's alone).  So
        # nothing is registered that way.  Generated code has already added a generic
        # handler for the same methods; only methods none answers are added, as generic.
        for name, handler in handlers.items():
            _stream_server(handler, f"/{service}/{name}")  # a wrong kind fails here, at once
        missing = {
            name: handler
            for name, handler in handlers.items()
            if not self._router.serves(f"/{service}/{name}")
        }
        if missing:
            self._router.inner.append(grpc.method_handlers_generic_handler(service, missing))


class _CallDetails(grpc.HandlerCallDetails):
    """The method name alone, to ask a generic handler whether it serves it."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


def _is_async(behavior: object) -> bool:
    """True for an ``async def`` function or an object with an ``async def __call__`` (a Server)."""
    return inspect.iscoroutinefunction(behavior) or inspect.iscoroutinefunction(
        inspect.getattr_static(behavior, "__call__", None)
    )


def _kind(handler: grpc.RpcMethodHandler[Any, Any]) -> str:
    """The handler's kind in gRPC's names: ``"unary_unary"``, ``"unary_stream"``, ..."""
    request = "stream" if handler.request_streaming else "unary"
    return f"{request}_{'stream' if handler.response_streaming else 'unary'}"


def _stream_server(
    handler: grpc.RpcMethodHandler[Any, Any], method: str
) -> StreamServer[Any, Any, Any, Any] | None:
    """The kitpy StreamServer that is ``handler``'s behaviour, checked against its kind."""
    behavior: object = (
        handler.unary_stream or handler.stream_unary or handler.stream_stream or handler.unary_unary
    )
    if not isinstance(behavior, StreamServer):
        return None
    if behavior.kind != _kind(handler):
        raise TypeError(
            f"{method} is a {_kind(handler)} method; its StreamServer has kind={behavior.kind!r}"
        )
    return behavior


def _invalid_message(parse: Callable[[bytes], Any]) -> str:
    """What a request that ``parse`` refuses is told, naming the message type."""
    owner = getattr(parse, "__self__", None)
    descriptor = getattr(owner, "DESCRIPTOR", None)
    type_name = getattr(descriptor, "full_name", "request message")
    return f"invalid request: the body is not a valid {type_name}"


def _guard(
    handler: grpc.RpcMethodHandler[Any, Any], method: str
) -> grpc.RpcMethodHandler[Any, Any]:
    """The handler, made to answer bytes that do not parse with INVALID_ARGUMENT."""
    if handler.request_streaming or handler.response_streaming:
        return _guard_stream(handler, method)
    _stream_server(handler, method)  # a StreamServer on a unary method fails here
    behavior = handler.unary_unary
    parse = handler.request_deserializer
    if behavior is None or parse is None or not _is_async(behavior):
        return handler
    message = _invalid_message(parse)
    kit_server: object = behavior  # the stubs type it as a plain callable
    if isinstance(kit_server, Server):
        # A kitpy Server (a servicer attribute) parses the bytes itself: no guard coroutine.
        # Its bound __call__ is an ``async def`` method, which grpc.aio awaits directly.
        parsing = kit_server.with_request_parser(parse, invalid_message=message, method=method)
        return grpc.unary_unary_rpc_method_handler(
            parsing.__call__,
            request_deserializer=None,
            response_serializer=handler.response_serializer,
        )
    handle = cast("Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]", behavior)

    async def guarded(raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            request = parse(raw)
        except Exception:
            await context.abort(_INVALID_ARGUMENT, message)
        return await handle(request, context)

    return grpc.unary_unary_rpc_method_handler(
        guarded, request_deserializer=None, response_serializer=handler.response_serializer
    )


def _guard_stream(
    handler: grpc.RpcMethodHandler[Any, Any], method: str
) -> grpc.RpcMethodHandler[Any, Any]:
    """A kitpy StreamServer's handler as its bound ``async def``, parsing the request bytes.

    grpc.aio awaits a coroutine function with the reader/writer API (request
    iterator, ``context.write``); an object, even with an ``async def
    __call__``, it would run as a *sync* handler.  Other streaming handlers
    are left as they are.
    """
    kit_server = _stream_server(handler, method)
    if kit_server is None:
        return handler
    parse = handler.request_deserializer
    message = "" if parse is None else _invalid_message(parse)
    serving = kit_server.with_request_parser(parse, invalid_message=message, method=method)
    make = {
        "unary_stream": grpc.unary_stream_rpc_method_handler,
        "stream_unary": grpc.stream_unary_rpc_method_handler,
        "stream_stream": grpc.stream_stream_rpc_method_handler,
    }[kit_server.kind]
    return make(
        serving.__call__,
        request_deserializer=None,
        response_serializer=handler.response_serializer,
    )
