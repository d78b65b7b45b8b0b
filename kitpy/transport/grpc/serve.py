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
lets a handler be a kitpy :class:`~kitpy.transport.grpc.Server` object itself
(plain grpc.aio only awaits ``async def`` functions, so with a bare
``grpc.aio.server`` delegate to the Server from an ``async def`` method, as a
generated servicer subclass does).

:meth:`GrpcServer.stop` stops gracefully: health turns NOT_SERVING for every
service (so health-checking load balancers stop sending), an optional
``drain`` pause lets them notice, then new calls are refused and in-flight
calls get ``grace`` seconds to finish before they are cancelled::

    server = GrpcServer()
    server.add_service("stringsvc.v1.StringService",
                       pb_grpc.add_StringServiceServicer_to_server, StringServicer(endpoints))
    port = await server.start("127.0.0.1:8081")
    ...
    await server.stop(grace=5.0)
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from .server import CALL_PAIRS, Server

__all__ = ["GrpcServer"]

S = TypeVar("S")

_INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT


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

    Example::

        server = GrpcServer(reflection=True)
    """

    def __init__(
        self,
        *,
        options: Sequence[tuple[str, Any]] = (),
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
        maximum_concurrent_rpcs: int | None = None,
        reflection: bool = False,
    ) -> None:
        opts = tuple(options)
        if not any(name == "grpc.so_reuseport" for name, _ in opts):
            opts += (("grpc.so_reuseport", 0),)
        self.server: grpc.aio.Server = grpc.aio.server(
            options=opts,
            interceptors=tuple(interceptors) or None,
            maximum_concurrent_rpcs=maximum_concurrent_rpcs,
        )
        self.health = health_aio.HealthServicer()
        # grpc.aio builds the metadata for the handler lookup; the router passes it on to the
        # call, unless an interceptor stands between (it may hand the lookup other metadata)
        self._router = _Router(share_pairs=not interceptors)
        self.server.add_generic_rpc_handlers((self._router,))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._registrar())
        self._services: list[str] = []
        self._reflection = reflection
        self._started = False

    @property
    def services(self) -> tuple[str, ...]:
        """The full names of the services added (health not included)."""
        return tuple(self._services)

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

    async def stop(self, *, grace: float = 5.0, drain: float = 0.0) -> None:
        """Stop gracefully: NOT_SERVING, wait ``drain`` s, refuse new calls, give ``grace`` s.

        In-flight calls still running after ``grace`` seconds are cancelled.
        Open streams count as in-flight calls, health ``Watch`` streams included.
        """
        await self.health.enter_graceful_shutdown()
        if drain > 0:
            await asyncio.sleep(drain)
        await self.server.stop(grace)

    async def wait_for_termination(self) -> None:
        """Wait until the server has stopped (bound it with ``asyncio.timeout`` if needed)."""
        await self.server.wait_for_termination()


class _Router(grpc.GenericRpcHandler):
    """The one generic handler GrpcServer gives grpc.aio: it finds, guards and keeps handlers.

    The generic handlers the services registered (:attr:`inner`) are asked in
    order the first time a method is called; the guarded answer is kept by
    method name, so a later call costs one dict lookup.  Names no handler
    serves are not kept (a client can send any number of them).  Answers are
    kept whatever the call's metadata: a generic handler that chooses by
    metadata is asked only once per method.

    With ``share_pairs`` each lookup puts the metadata grpc.aio built for it in
    :data:`~kitpy.transport.grpc.server.CALL_PAIRS` (the lookup runs in the
    call's own task, just before its handler).
    """

    def __init__(self, *, share_pairs: bool) -> None:
        self.inner: list[grpc.GenericRpcHandler] = []
        self._share_pairs = share_pairs
        self._found: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        if self._share_pairs:
            CALL_PAIRS.set(handler_call_details.invocation_metadata)
        found = self._found.get(handler_call_details.method)
        return self._find(handler_call_details) if found is None else found

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


class _Registrar:
    """What generated ``add_..._to_server`` functions register with: the server's router.

    Everything is served as a generic handler (see
    ``add_registered_method_handlers``); the router replaces each unary-unary
    handler whose behaviour is a coroutine function with one that parses the
    request bytes itself, so a malformed request aborts with INVALID_ARGUMENT.
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


def _guard(
    handler: grpc.RpcMethodHandler[Any, Any], method: str
) -> grpc.RpcMethodHandler[Any, Any]:
    """The handler, made to answer bytes that do not parse with INVALID_ARGUMENT."""
    behavior = handler.unary_unary
    parse = handler.request_deserializer
    if (
        handler.request_streaming
        or handler.response_streaming
        or behavior is None
        or parse is None
        or not _is_async(behavior)
    ):
        return handler
    owner = getattr(parse, "__self__", None)
    descriptor = getattr(owner, "DESCRIPTOR", None)
    type_name = getattr(descriptor, "full_name", "request message")
    message = f"invalid request: the body is not a valid {type_name}"
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
