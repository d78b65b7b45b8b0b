"""gRPC metadata: the Context keys the transport fills, and helpers to move values.

Metadata keys are lower case on the wire (HTTP/2 requires it); keys ending in
``-bin`` carry ``bytes``, all others ``str``.  Inside kitpy, metadata is a
plain mapping (:data:`Metadata`); when a key repeats, the last value wins.

Context keys set by :class:`~kitpy.transport.grpc.Server` before its ``before``
funcs run: :data:`METHOD` (``"/package.Service/Method"``), :data:`METADATA`
(the invocation metadata) and :data:`PEER` (e.g. ``"ipv4:127.0.0.1:5123"``),
besides the transport-neutral :data:`kitpy.context.REQUEST_ID` (the
``x-request-id`` metadata, or a new id) and :data:`kitpy.context.OPERATION`
(the method).  The Server stores the metadata as grpc.aio's pairs
(:data:`INVOCATION_PAIRS`): METADATA is derived from them when read (see
:class:`~kitpy.context.Key`).  The request id is made when the call starts
(every reply carries it), by :func:`incoming_request_id` or a new one.
The peer is read while the call runs: grpc.aio's context must not be touched
after its call has ended.

Helpers that build hook functions (each is resolved once, when built)::

    Server(..., before=[metadata_to_context("x-tenant", TENANT)])
    Server(..., after=[context_to_response_metadata(TENANT, "x-tenant")])
    Client(..., before=[context_to_metadata(TENANT, "x-tenant")])
    Client(..., after=[response_metadata_to_context("x-request-id", UPSTREAM_ID)])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any, TypeAlias

from kitpy.context import Context, Key

__all__ = [
    "INVOCATION_PAIRS",
    "METADATA",
    "METHOD",
    "PEER",
    "Metadata",
    "MutableMetadata",
    "OutgoingMetadata",
    "context_to_metadata",
    "context_to_response_metadata",
    "incoming_request_id",
    "metadata_from_pairs",
    "metadata_to_context",
    "metadata_to_pairs",
    "response_metadata_to_context",
    "set_response_metadata",
]

Metadata: TypeAlias = Mapping[str, str | bytes]
"""Received metadata: lower-case keys; ``-bin`` keys carry bytes."""
MutableMetadata: TypeAlias = MutableMapping[str, str | bytes]
"""Metadata to send, filled by hook functions; keys are lower-cased when sent."""
OutgoingMetadata: TypeAlias = tuple[tuple[str, str | bytes], ...]
"""Metadata in the form grpc.aio takes it."""

INVOCATION_PAIRS: Key[tuple[tuple[str, str | bytes], ...]] = Key("grpc.invocation_pairs")
"""The invocation metadata as grpc.aio hands it over; :data:`METADATA` is derived from it."""


def _metadata(ctx: Context) -> Metadata | None:
    pairs = ctx.get(INVOCATION_PAIRS)
    return None if pairs is None else dict(pairs)


METHOD: Key[str] = Key("grpc.method")
"""The full method name, ``"/package.Service/Method"``."""
METADATA: Key[Metadata] = Key("grpc.metadata", derive=_metadata)
"""The invocation metadata the client sent (a new dict from :data:`INVOCATION_PAIRS` per read)."""
PEER: Key[str] = Key("grpc.peer")
"""The client's address as grpc reports it, e.g. ``"ipv4:127.0.0.1:5123"``."""


_MAX_REQUEST_ID = 128


def incoming_request_id(pairs: Iterable[tuple[str, str | bytes]]) -> str | None:
    """The caller's ``x-request-id`` from grpc's metadata pairs, if usable; else None.

    The last one wins (as in :data:`METADATA`); a usable id is a non-empty
    string of at most 128 characters.  The one rule of kitpy's gRPC Servers::

        incoming_request_id((("x-request-id", "r-7"),))   # "r-7"
        incoming_request_id((("x-request-id", ""),))      # None
    """
    request_id = None
    for key, value in pairs:
        if key == "x-request-id":
            request_id = value
    if isinstance(request_id, str) and 0 < len(request_id) <= _MAX_REQUEST_ID:
        return request_id
    return None


def metadata_from_pairs(pairs: Iterable[tuple[str, str | bytes]] | None) -> dict[str, str | bytes]:
    """A dict from grpc's ``(key, value)`` pairs (keys lower-cased; the last repeat wins)."""
    if not pairs:
        return {}
    return {key.lower(): value for key, value in pairs}


def metadata_to_pairs(metadata: Mapping[str, str | bytes]) -> OutgoingMetadata:
    """grpc's ``(key, value)`` pairs from a mapping, ready to send.

    Keys are lower-cased.  A ``-bin`` key with a ``str`` value is UTF-8 encoded;
    a plain key with a ``bytes`` value raises ``TypeError`` (send bytes under a
    ``-bin`` key), so a mistake fails here with a clear message instead of deep
    inside grpc.
    """
    pairs: list[tuple[str, str | bytes]] = []
    for key, value in metadata.items():
        key = key.lower()
        if key.endswith("-bin"):
            if isinstance(value, str):
                value = value.encode()
        elif not isinstance(value, str):
            raise TypeError(
                f"metadata {key!r} must be str; binary values need a key ending in '-bin'"
            )
        pairs.append((key, value))
    return tuple(pairs)


def metadata_to_context(name: str, key: Key[Any]) -> Callable[[Context, Metadata], Context]:
    """A server ``before`` func: copy incoming metadata ``name`` into the Context at ``key``.

    The value is ``bytes`` for a ``-bin`` name, else ``str``; absent -> unchanged Context.
    """
    name = name.lower()

    def before(ctx: Context, metadata: Metadata) -> Context:
        value = metadata.get(name)
        return ctx if value is None else ctx.with_value(key, value)

    return before


def context_to_metadata(key: Key[Any], name: str) -> Callable[[Context, MutableMetadata], Context]:
    """A client ``before`` func: send the Context value at ``key`` as metadata ``name``.

    Nothing is sent when the Context has no value for ``key``.
    """
    name = name.lower()

    def before(ctx: Context, metadata: MutableMetadata) -> Context:
        value = ctx.get(key)
        if value is not None:
            metadata[name] = value
        return ctx

    return before


def set_response_metadata(
    name: str, value: str | bytes, *, trailing: bool = False
) -> Callable[[Context, MutableMetadata, MutableMetadata], Context]:
    """A server ``after`` func: send a fixed ``name: value`` as initial (or trailing) metadata."""
    name = name.lower()

    def after(ctx: Context, initial: MutableMetadata, trailers: MutableMetadata) -> Context:
        (trailers if trailing else initial)[name] = value
        return ctx

    return after


def context_to_response_metadata(
    key: Key[Any], name: str, *, trailing: bool = False
) -> Callable[[Context, MutableMetadata, MutableMetadata], Context]:
    """A server ``after`` func: send the Context value at ``key`` as response metadata ``name``."""
    name = name.lower()

    def after(ctx: Context, initial: MutableMetadata, trailers: MutableMetadata) -> Context:
        value = ctx.get(key)
        if value is not None:
            (trailers if trailing else initial)[name] = value
        return ctx

    return after


def response_metadata_to_context(
    name: str, key: Key[Any]
) -> Callable[[Context, Metadata, Metadata], Context]:
    """A client ``after`` func: copy response metadata ``name`` to ``key``.

    The initial metadata is looked at first, then the trailing metadata.
    """
    name = name.lower()

    def after(ctx: Context, initial: Metadata, trailing: Metadata) -> Context:
        value = initial.get(name)
        if value is None:
            value = trailing.get(name)
        return ctx if value is None else ctx.with_value(key, value)

    return after
