"""Where the Connect gateway finds a method's protobuf message types.

The Connect handler (:mod:`kitpy.gateway.connect`) turns JSON into the protobuf
an upstream gRPC method takes, so it needs the method's request and response
message classes.  It asks a :class:`Descriptors` source, whose one method is::

    await descriptors.lookup("stringsvc.v1.StringService/Uppercase")  # ProtoMethod | None

Three sources:

* :meth:`StaticDescriptors.from_modules` -- generated ``*_pb2`` modules (or
  their ``FileDescriptor``): the services those files declare;
* :meth:`StaticDescriptors.from_descriptor_set` -- a serialized
  ``FileDescriptorSet`` (``protoc --include_imports --descriptor_set_out=...``
  or ``buf build -o``), as bytes or a file path;
* :class:`ReflectionDescriptors` -- gRPC server reflection against the
  upstream (``grpc.reflection.v1alpha``, which grpcio-reflection serves and
  :class:`~kitpy.transport.grpc.GrpcServer` serves with ``reflection=True``),
  read on first use and cached per service.

A :class:`ProtoMethod` carries the classes, whether the method streams (the
Connect handler serves unary methods only) and its ``idempotency_level``
option, so the wiring can retry only calls that are safe to repeat.

Example::

    from examples.stringsvc.pb import stringsvc_pb2

    descriptors = StaticDescriptors.from_modules(stringsvc_pb2)
    method = await descriptors.lookup("stringsvc.v1.StringService/Uppercase")
    method.request(s="hi")           # a stringsvc.v1.UppercaseRequest
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Literal, Protocol, TypeAlias

import grpc
import grpc.aio
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FileDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message import DecodeError, Message
from grpc_reflection.v1alpha import reflection_pb2

from kitpy.errors import Unavailable

from .proto_json import MessageJson

__all__ = [
    "Descriptors",
    "Idempotency",
    "ProtoMethod",
    "ReflectionDescriptors",
    "StaticDescriptors",
]

Idempotency: TypeAlias = Literal["unknown", "no_side_effects", "idempotent"]
"""A method's ``option idempotency_level`` (``IDEMPOTENCY_UNKNOWN`` when not set)."""

_IDEMPOTENCY: dict[int, Idempotency] = {
    descriptor_pb2.MethodOptions.IDEMPOTENCY_UNKNOWN: "unknown",
    descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS: "no_side_effects",
    descriptor_pb2.MethodOptions.IDEMPOTENT: "idempotent",
}


@dataclass(frozen=True, slots=True)
class ProtoMethod:
    """One gRPC method's message classes and the facts the gateway acts on.

    ``name`` is ``"package.Service/Method"``; ``pool`` is the descriptor pool
    the classes live in (JSON needs it to resolve ``google.protobuf.Any``).
    """

    name: str
    request: type[Message]
    response: type[Message]
    streaming: bool
    """True for client-, server- or bidi-streaming methods (not served as Connect unary)."""
    idempotency: Idempotency
    pool: DescriptorPool
    request_json: MessageJson = field(init=False, repr=False, compare=False)
    """The request's JSON mapping (what a Connect JSON body becomes)."""
    response_json: MessageJson = field(init=False, repr=False, compare=False)
    """The response's JSON mapping."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "request_json", MessageJson(self.request, pool=self.pool))
        object.__setattr__(self, "response_json", MessageJson(self.response, pool=self.pool))

    @property
    def path(self) -> str:
        """The gRPC path, ``"/package.Service/Method"``."""
        return "/" + self.name

    @property
    def idempotent(self) -> bool:
        """Whether a call may be repeated safely (``NO_SIDE_EFFECTS`` or ``IDEMPOTENT``)."""
        return self.idempotency != "unknown"


class Descriptors(Protocol):
    """A source of method descriptors: the one thing the Connect handler asks."""

    async def lookup(self, method: str) -> ProtoMethod | None:
        """The method named ``"package.Service/Method"``, or None if there is none.

        Raises :class:`~kitpy.errors.Unavailable` when the source cannot be
        read just now (an upstream's reflection service unreachable).
        """
        ...


def _method(desc: MethodDescriptor, pool: DescriptorPool) -> ProtoMethod:
    level = desc.GetOptions().idempotency_level
    return ProtoMethod(
        name=f"{desc.containing_service.full_name}/{desc.name}",
        request=message_factory.GetMessageClass(desc.input_type),
        response=message_factory.GetMessageClass(desc.output_type),
        streaming=desc.client_streaming or desc.server_streaming,
        idempotency=_IDEMPOTENCY.get(level, "unknown"),
        pool=pool,
    )


def _service_methods(service: ServiceDescriptor, pool: DescriptorPool) -> Iterator[ProtoMethod]:
    for desc in service.methods:
        yield _method(desc, pool)


def _pool_of(files: Mapping[str, descriptor_pb2.FileDescriptorProto]) -> DescriptorPool:
    """A new pool holding ``files``, each added after its dependencies.

    A dependency missing from ``files`` is taken from the default pool when it
    is there (the well-known types, ``google/protobuf/*.proto``, always are);
    otherwise ``ValueError`` names it.  Iterative, so a long or cyclic chain
    (from a hostile upstream) cannot exhaust the stack.
    """
    pool = DescriptorPool()
    default = descriptor_pool.Default()
    added: set[str] = set()
    for root in files:
        stack: list[tuple[str, bool]] = [(root, False)]
        visiting: set[str] = set()
        while stack:
            name, deps_done = stack.pop()
            if name in added:
                continue
            proto = files.get(name)
            if proto is None:
                try:
                    proto = descriptor_pb2.FileDescriptorProto()
                    default.FindFileByName(name).CopyToProto(proto)
                except KeyError:
                    raise ValueError(f"descriptor file {name!r} is missing") from None
            if deps_done:
                pool.Add(proto)
                added.add(name)
                visiting.discard(name)
                continue
            if name in visiting:
                raise ValueError(f"descriptor file {name!r} depends on itself")
            visiting.add(name)
            stack.append((name, True))
            stack.extend((dep, False) for dep in proto.dependency if dep not in added)
    return pool


class StaticDescriptors:
    """Methods known up front, from generated modules or a descriptor set.

    ``lookup`` is a dictionary read.  Build one with :meth:`from_modules` or
    :meth:`from_descriptor_set`; ``services=`` keeps only the named services.
    """

    __slots__ = ("_methods",)

    def __init__(self, methods: Iterable[ProtoMethod]) -> None:
        self._methods = {method.name: method for method in methods}

    @classmethod
    def from_modules(
        cls, *modules: ModuleType | FileDescriptor, services: Collection[str] | None = None
    ) -> StaticDescriptors:
        """The services declared in generated ``*_pb2`` modules (or ``FileDescriptor`` objects).

        Example::

            StaticDescriptors.from_modules(stringsvc_pb2).names
            # ('stringsvc.v1.StringService/Uppercase', ...Count, ...Tokens)
        """
        methods: list[ProtoMethod] = []
        for module in modules:
            file = module if isinstance(module, FileDescriptor) else module.DESCRIPTOR
            if not isinstance(file, FileDescriptor):
                raise TypeError(f"{module!r} is not a generated protobuf module")
            for service in file.services_by_name.values():
                if services is None or service.full_name in services:
                    methods.extend(_service_methods(service, file.pool))
        return cls(methods)

    @classmethod
    def from_descriptor_set(
        cls, source: bytes | str | os.PathLike[str], *, services: Collection[str] | None = None
    ) -> StaticDescriptors:
        """The services in a serialized ``FileDescriptorSet`` (bytes, or the path of a file).

        Build one with ``protoc --include_imports --descriptor_set_out=api.binpb
        api.proto`` (or ``buf build -o api.binpb``).  The messages live in a
        pool of their own, so they never clash with generated modules loaded in
        the same process.  A malformed set raises ``ValueError``.
        """
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        try:
            fds = descriptor_pb2.FileDescriptorSet.FromString(data)
        except DecodeError as exc:
            raise ValueError(f"not a FileDescriptorSet: {exc}") from None
        files = {file.name: file for file in fds.file}
        pool = _pool_of(files)
        methods: list[ProtoMethod] = []
        for file in fds.file:
            for service in file.service:
                name = f"{file.package}.{service.name}" if file.package else service.name
                if services is None or name in services:
                    methods.extend(_service_methods(pool.FindServiceByName(name), pool))
        return cls(methods)

    @property
    def names(self) -> tuple[str, ...]:
        """Every method's ``"package.Service/Method"``."""
        return tuple(self._methods)

    def get(self, method: str) -> ProtoMethod | None:
        """The method, or None (what :meth:`lookup` answers, without awaiting)."""
        return self._methods.get(method)

    async def lookup(self, method: str) -> ProtoMethod | None:
        """The method named ``"package.Service/Method"``, or None."""
        return self._methods.get(method)


_REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
_MAX_FILES = 512  # per service: a larger closure of imports is refused as unusable

_Stream: TypeAlias = grpc.aio.StreamStreamCall[Message, reflection_pb2.ServerReflectionResponse]


class _Unusable(Exception):
    """The upstream's reflection answers cannot be turned into descriptors."""


@dataclass(slots=True)
class _Loaded:
    methods: dict[str, ProtoMethod]  # by the method's name within the service
    at: float


class ReflectionDescriptors:
    """Descriptors read from the upstream's gRPC server reflection, cached per service.

    The first call of a service reads its file (and the files it imports)
    over ``channel``, in one reflection stream bounded by ``timeout`` seconds;
    later calls are dictionary reads.  The list of services is read once too,
    so a request naming a service the upstream does not serve costs no round
    trip; it and a service's methods are read again on a miss, at most once
    every ``refresh`` seconds (default 30), which picks up services and
    methods deployed later.  A method's message types, once read, are kept.

    ``services`` limits what is exposed; by default every service the upstream
    lists except gRPC's own (``grpc.*``: health, reflection, channelz).  When
    the upstream cannot be reached or answers with descriptors that do not
    build, ``lookup`` raises :class:`~kitpy.errors.Unavailable` (and the next
    call tries again).

    Example::

        async with grpc.aio.insecure_channel("127.0.0.1:8081") as channel:
            descriptors = ReflectionDescriptors(channel)
            await descriptors.lookup("stringsvc.v1.StringService/Uppercase")
    """

    __slots__ = ("_channel", "_listed", "_loaded", "_lock", "_services", "refresh", "timeout")

    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        services: Collection[str] | None = None,
        refresh: float = 30.0,
        timeout: float = 5.0,
    ) -> None:
        self._channel = channel
        self._services = None if services is None else frozenset(services)
        self.refresh = refresh
        self.timeout = timeout
        self._listed: tuple[frozenset[str], float] | None = None
        self._loaded: dict[str, _Loaded] = {}
        self._lock = asyncio.Lock()

    def _exposed(self, service: str) -> bool:
        if self._services is not None:
            return service in self._services
        return not service.startswith("grpc.")

    def _fresh(self, at: float) -> bool:
        return time.monotonic() - at < self.refresh

    def _known(self, service: str, name: str) -> tuple[bool, ProtoMethod | None]:
        """``(True, answer)`` if the cache answers for ``service/name``, else ``(False, None)``."""
        loaded = self._loaded.get(service)
        if loaded is not None:
            found = loaded.methods.get(name)
            return (found is not None or self._fresh(loaded.at)), found
        if not self._exposed(service):
            return True, None
        if self._listed is not None and self._fresh(self._listed[1]):
            return service not in self._listed[0], None
        return False, None

    async def lookup(self, method: str) -> ProtoMethod | None:
        """The method named ``"package.Service/Method"``, or None; may read the upstream."""
        service, _, name = method.partition("/")
        known, found = self._known(service, name)
        if known:
            return found
        async with self._lock:  # one reader at a time; those waiting find the answer cached
            known, found = self._known(service, name)
            if known:
                return found
            loaded = await self._load(service)
        return None if loaded is None else loaded.methods.get(name)

    async def _load(self, service: str) -> _Loaded | None:
        """Read ``service``'s files by reflection; None if the upstream does not serve it."""
        call: _Stream = self._channel.stream_stream(
            _REFLECTION,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )(timeout=self.timeout)
        try:
            async with asyncio.timeout(self.timeout):
                files = None
                if service in await self._list(call):
                    files = await self._files(call, service)
        except (grpc.aio.AioRpcError, TimeoutError) as exc:
            raise Unavailable(
                f"could not read the descriptors of {service[:100]} from the upstream"
            ) from exc
        except _Unusable as exc:
            raise Unavailable(
                f"the upstream's descriptors of {service[:100]} are unusable"
            ) from exc
        finally:
            call.cancel()
        if files is None:
            self._loaded.pop(service, None)
            return None
        try:
            pool = _pool_of(files)
            methods = _service_methods(pool.FindServiceByName(service), pool)
            loaded = _Loaded({m.name.partition("/")[2]: m for m in methods}, time.monotonic())
        except Exception as exc:  # whatever the upstream sent, it must not become a 500
            raise Unavailable(
                f"the upstream's descriptors of {service[:100]} are unusable"
            ) from exc
        self._loaded[service] = loaded
        return loaded

    @staticmethod
    async def _ask(
        call: _Stream, request: reflection_pb2.ServerReflectionRequest
    ) -> reflection_pb2.ServerReflectionResponse:
        await call.write(request)
        response = await call.read()
        if not isinstance(response, reflection_pb2.ServerReflectionResponse):
            raise _Unusable("the reflection stream ended early")
        return response

    async def _list(self, call: _Stream) -> frozenset[str]:
        """The exposed services the upstream serves (cached for ``refresh`` seconds)."""
        if self._listed is not None and self._fresh(self._listed[1]):
            return self._listed[0]
        response = await self._ask(call, reflection_pb2.ServerReflectionRequest(list_services=""))
        names = frozenset(
            s.name for s in response.list_services_response.service if self._exposed(s.name)
        )
        self._listed = (names, time.monotonic())
        return names

    async def _files(
        self, call: _Stream, service: str
    ) -> dict[str, descriptor_pb2.FileDescriptorProto] | None:
        """The file declaring ``service`` and the files it imports, by name; None if not found.

        An upstream sends a file's imports with it (grpcio-reflection sends them
        all); any it leaves out are asked for by name, and any it cannot
        describe are left for :func:`_pool_of` to find in the default pool.
        """
        files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
        asked: set[str] = set()
        request = reflection_pb2.ServerReflectionRequest(file_containing_symbol=service)
        while True:
            response = await self._ask(call, request)
            if response.HasField("error_response") and not files:
                return None  # listed, but not described: treat as not served
            try:
                for data in response.file_descriptor_response.file_descriptor_proto:
                    proto = descriptor_pb2.FileDescriptorProto.FromString(data)
                    files.setdefault(proto.name, proto)
            except DecodeError as exc:
                raise _Unusable(str(exc)) from None
            if len(files) > _MAX_FILES:
                raise _Unusable(f"over {_MAX_FILES} descriptor files")
            missing = [
                dep for proto in files.values() for dep in proto.dependency if dep not in files
            ]
            missing = [dep for dep in missing if dep not in asked]
            if not missing:
                return files
            asked.add(missing[0])
            request = reflection_pb2.ServerReflectionRequest(file_by_filename=missing[0])
