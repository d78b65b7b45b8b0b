"""The API held to its conventions (docs/conventions.md), so a new package cannot drift.

* Every middleware factory kitpy exports is a noun phrase for the layer it
  adds -- never ``*_middleware`` -- and the table below builds each one: a new
  factory without a row fails here.
* Every one of them keeps the operation name of the endpoint it wraps.
* One keyword for a failure test (``classifier``), one for an explicit
  operation name (``name``); no leftovers (``on``, ``method``, ``request_id_keys``).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import time
import typing
from collections.abc import AsyncIterator, Callable
from typing import Any

import jwt as pyjwt
import pytest
from opentelemetry.trace import SpanKind

import kitpy
from kitpy import Context, GenericMiddleware, named
from kitpy.auth import basic_auth, require_claim_values, require_roles, require_scopes
from kitpy.auth.jwt import TOKEN, jwt_parser, jwt_signer
from kitpy.circuitbreaker import CircuitBreaker, circuit_breaker
from kitpy.context import OPERATION
from kitpy.endpoint import chain, endpoint_name
from kitpy.endpoint.stream import lift, named_stream
from kitpy.gateway import claims_parser
from kitpy.log import call_logging, stream_logging
from kitpy.metrics import call_metrics, stream_metrics
from kitpy.ratelimit import TokenBucket, concurrency_limit, rate_limit
from kitpy.resilience import fallback, retry, timeout
from kitpy.testing import CapturedLogs, RequestMetrics, SpanRecorder, StreamMetrics
from kitpy.tracing import call_tracing, stream_tracing

SECRET = b"a-test-secret-of-at-least-32-bytes!!"


async def _handler(ctx: Context, request: Any, error: BaseException) -> Any:
    return None


def _stream_instruments() -> tuple[Any, Any, Any]:
    metrics = StreamMetrics()
    return metrics.streams, metrics.duration, metrics.messages


# Every middleware factory kitpy exports, with what it takes to build one.
FACTORIES: dict[str, Callable[[], Any]] = {
    "call_logging": lambda: call_logging(CapturedLogs().logger),
    "call_metrics": lambda: call_metrics(RequestMetrics().requests, RequestMetrics().latency),
    "call_tracing": lambda: call_tracing(SpanRecorder().tracer),
    "basic_auth": lambda: basic_auth("ada", "secret"),
    "require_claim_values": lambda: require_claim_values("team", ["blue"]),
    "require_roles": lambda: require_roles("admin"),
    "require_scopes": lambda: require_scopes("read"),
    "jwt_signer": lambda: jwt_signer(SECRET, algorithm="HS256"),
    "jwt_parser": lambda: jwt_parser(SECRET, algorithms=["HS256"]),
    "claims_parser": lambda: claims_parser(SECRET, audience="svc"),
    "circuit_breaker": lambda: circuit_breaker(CircuitBreaker()),
    "concurrency_limit": lambda: concurrency_limit(4),
    "rate_limit": lambda: rate_limit(TokenBucket(10.0, 1)),
    "rate_limit(wait=True)": lambda: rate_limit(TokenBucket(10.0, 1), wait=True),
    "retry": lambda: retry(),
    "timeout": lambda: timeout(1.0),
    "fallback": lambda: fallback(_handler),
    "named": lambda: named("other"),
}
# Every stream middleware factory (returns a StreamMiddleware), with what it takes to build one.
STREAM_FACTORIES: dict[str, Callable[[], Any]] = {
    "lift": lambda: lift(call_logging(CapturedLogs().logger)),
    "named_stream": lambda: named_stream("other"),
    "stream_logging": lambda: stream_logging(CapturedLogs().logger),
    "stream_metrics": lambda: stream_metrics(*_stream_instruments()),
    "stream_tracing": lambda: stream_tracing(SpanRecorder().tracer),
}
NOT_A_LAYER = {"chain", "stream_chain"}  # combine middlewares; no layer of their own


def _public_callables() -> list[tuple[str, Callable[..., Any]]]:
    out = []
    for info in pkgutil.walk_packages(kitpy.__path__, "kitpy."):
        if info.name.startswith("kitpy.scaffold.template"):
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if callable(obj) and not inspect.isclass(obj):
                out.append((f"{info.name}.{name}", obj))
    return out


def _returns_a_middleware(obj: Callable[..., Any]) -> bool:
    """True when ``obj`` is annotated to return a middleware.

    That is ``GenericMiddleware`` / ``Middleware[...]``, or a class whose
    instances are called with an endpoint (``JWTParser``: a middleware that
    also exposes its cache and ``verify``).
    """
    try:
        if "Middleware" in str(inspect.signature(obj).return_annotation):
            return True
        annotation = typing.get_type_hints(obj).get("return")
    except Exception:  # no signature, or an annotation that does not resolve at runtime
        return False
    origin = typing.get_origin(annotation) or annotation
    if not inspect.isclass(origin) or "__call__" not in vars(origin):
        return False
    parameters = list(inspect.signature(vars(origin)["__call__"]).parameters)
    return parameters[1:2] == ["next"]


def _returns_a_stream_middleware(obj: Callable[..., Any]) -> bool:
    try:
        return "StreamMiddleware" in str(inspect.signature(obj).return_annotation)
    except (TypeError, ValueError):
        return False


def _middleware_factories() -> set[str]:
    found = {
        obj.__name__
        for _, obj in _public_callables()
        if _returns_a_middleware(obj) and not _returns_a_stream_middleware(obj)
    }
    return found - NOT_A_LAYER


def _stream_middleware_factories() -> set[str]:
    found = {obj.__name__ for _, obj in _public_callables() if _returns_a_stream_middleware(obj)}
    return found - NOT_A_LAYER


def test_every_middleware_factory_has_a_row_and_none_is_named_middleware() -> None:
    factories = _middleware_factories()
    assert {name for name in factories if name.endswith("_middleware")} == set()
    rows = {row.split("(")[0] for row in FACTORIES}
    assert factories - rows == set(), "add these factories to FACTORIES"
    streams = _stream_middleware_factories()
    assert {name for name in streams if name.endswith("_middleware")} == set()
    rows = {row.split("(")[0] for row in STREAM_FACTORIES}
    assert streams - rows == set(), "add these factories to STREAM_FACTORIES"


@pytest.mark.parametrize("row", sorted(STREAM_FACTORIES))
def test_every_stream_middleware_keeps_the_operation_name(row: str) -> None:
    async def endpoint(ctx: Context, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for request in requests:
            yield request

    wrapped = STREAM_FACTORIES[row]()(named_stream("op")(endpoint))
    assert endpoint_name(wrapped) == ("other" if row == "named_stream" else "op")


@pytest.mark.parametrize("row", sorted(FACTORIES))
def test_every_middleware_keeps_the_operation_name(row: str) -> None:
    async def endpoint(ctx: Context, request: Any) -> Any:
        return request

    middleware = FACTORIES[row]()
    wrapped = middleware(named("op")(endpoint))
    expected = "other" if row == "named" else "op"
    assert endpoint_name(wrapped) == expected


def test_one_keyword_for_a_failure_test_and_one_for_a_name() -> None:
    leftovers = {"on", "request_id_keys", "failure", "is_failure"}
    for qualified, obj in _public_callables():
        try:
            parameters = inspect.signature(obj).parameters
        except (TypeError, ValueError):
            continue
        assert leftovers.isdisjoint(parameters), f"{qualified}{inspect.signature(obj)}"
    for factory in (
        call_logging, call_metrics, call_tracing, stream_logging, stream_metrics, stream_tracing,
    ):  # fmt: skip
        parameters = inspect.signature(factory).parameters
        assert "name" in parameters
        assert "method" not in parameters


async def test_a_stack_with_no_name_anywhere_reports_the_transport_operation() -> None:
    logs, metrics, spans = CapturedLogs(), RequestMetrics(), SpanRecorder()

    def tag(value: str) -> GenericMiddleware:  # a user middleware that knows nothing of names
        def middleware(next: Any) -> Any:
            async def endpoint(ctx: Context, request: Any) -> Any:
                return await next(ctx, request) + value

            return endpoint

        return middleware

    async def endpoint(ctx: Context, s: str) -> str:
        return s.upper()

    stack = chain(
        call_tracing(spans.tracer, kind=SpanKind.SERVER),
        call_logging(logs.logger),
        call_metrics(metrics.requests, metrics.latency),
        retry(),
    )(jwt_parser(SECRET, algorithms=["HS256"])(tag("!")(endpoint)))
    assert endpoint_name(stack) is None  # nothing named it: the transport's operation is used
    token = pyjwt.encode({"sub": "ada", "exp": time.time() + 60}, SECRET, algorithm="HS256")
    ctx = Context().with_values({OPERATION: "POST /uppercase", TOKEN: token})
    assert await stack(ctx, "hi") == "HI!"

    line = logs.assert_logged_once()
    assert line["method"] == "POST /uppercase"
    metrics.assert_count(1, method="POST /uppercase", code="OK")
    assert metrics.count(method="endpoint", code="OK") == 0
    assert [span.name for span in spans.spans] == ["POST /uppercase"]
