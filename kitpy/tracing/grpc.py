"""Tracing hooks for the gRPC transport (``kitpy.transport.grpc``).

Server: :func:`grpc_server_before` extracts ``traceparent``/baggage from the
invocation metadata and starts a SERVER span named ``package.Service/Method``
with the OpenTelemetry RPC semantic-convention attributes (``rpc.system``,
``rpc.service``, ``rpc.method``); :func:`grpc_server_finalizer` records
``rpc.grpc.status_code`` and ends it (status ERROR for server-fault codes only).
Client: :func:`grpc_client_before` injects the Context's current span into the
outgoing metadata.

Example::

    Server(endpoint, decode, encode,
           before=[grpc_server_before(tracer)], finalizer=[grpc_server_finalizer()])
    Client(channel, "/pkg.Svc/Method", ..., before=[grpc_client_before()])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping

from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from kitpy.context import Context
from kitpy.errors import Code, is_server_fault
from kitpy.tracing.context import EMPTY, OTEL_CONTEXT, SERVER_SPAN, SPAN
from kitpy.tracing.propagation import extractor, inject, w3c_propagator
from kitpy.tracing.sampling import span_starter

__all__ = ["grpc_client_before", "grpc_server_before", "grpc_server_finalizer", "rpc_attributes"]


def rpc_attributes(method: str) -> tuple[str, dict[str, AttributeValue]]:
    """The span name and RPC attributes for a full method name ``/package.Service/Method``.

    Example::

        rpc_attributes("/pkg.Svc/Get")
        # ("pkg.Svc/Get", {"rpc.system": "grpc", "rpc.service": "pkg.Svc", "rpc.method": "Get"})
    """
    name = method.lstrip("/")
    service, _, rpc = name.rpartition("/")
    attributes: dict[str, AttributeValue] = {"rpc.system": "grpc", "rpc.method": rpc or name}
    if service:
        attributes["rpc.service"] = service
    return name, attributes


_Resolved = tuple[str, dict[str, AttributeValue]]


def _fixed_name(method: str) -> Callable[[Context], _Resolved]:
    resolved = rpc_attributes(method)
    return lambda ctx: resolved


def _name_from_context() -> Callable[[Context], _Resolved]:
    from kitpy.transport.grpc.metadata import METHOD

    cache: dict[str, _Resolved] = {}

    def resolve(ctx: Context) -> _Resolved:
        full = ctx.get(METHOD, "unknown")
        resolved = cache.get(full)
        if resolved is None:
            resolved = cache[full] = rpc_attributes(full)
        return resolved

    return resolve


def grpc_server_before(
    tracer: Tracer,
    *,
    method: str | None = None,
    propagator: TextMapPropagator | None = None,
) -> Callable[[Context, Mapping[str, str | bytes]], Context]:
    """A server ``before`` hook: continue the caller's trace with a SERVER span.

    ``method`` is the full method name; by default it is read per call from
    ``kitpy.transport.grpc.METHOD``.  End the span with
    :func:`grpc_server_finalizer` in the same Server.  With the default (W3C)
    propagator, metadata without trace keys skips extraction.
    """
    extract = extractor(propagator)
    start_span = span_starter(tracer)
    resolve = _fixed_name(method) if method is not None else _name_from_context()

    def before(ctx: Context, metadata: Mapping[str, str | bytes]) -> Context:
        parent = extract(metadata)
        resolved = resolve(ctx)
        span = start_span(resolved[0], parent, SpanKind.SERVER, None)
        if span.is_recording():
            span.set_attributes(resolved[1])
        if parent is EMPTY:  # no remote parent, no baggage: nothing to keep but the span
            return ctx.with_values({SPAN: span, SERVER_SPAN: span})
        return ctx.with_values({SPAN: span, OTEL_CONTEXT: parent, SERVER_SPAN: span})

    return before


def grpc_server_finalizer() -> Callable[[Context, Code], None]:
    """A server ``finalizer``: record the final status code, then end the SERVER span."""

    def finalizer(ctx: Context, code: Code) -> None:
        span = ctx.get(SERVER_SPAN)
        if span is None or not span.is_recording():  # ending a span that records nothing is a no-op
            return
        span.set_attribute("rpc.grpc.status_code", int(code))
        if code is not Code.OK:
            span.set_attribute("error.type", code.name)
            if is_server_fault(code):
                span.set_status(Status(StatusCode.ERROR))
        span.end()

    return finalizer


def grpc_client_before(
    *, propagator: TextMapPropagator | None = None
) -> Callable[[Context, MutableMapping[str, str | bytes]], Context]:
    """A client ``before`` hook: send the Context's trace context and baggage as metadata."""
    prop = propagator if propagator is not None else w3c_propagator()

    def before(ctx: Context, metadata: MutableMapping[str, str | bytes]) -> Context:
        inject(prop, ctx, metadata)
        return ctx

    return before
