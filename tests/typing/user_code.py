"""Typical kitpy user code that ``mypy --strict`` must accept (checked by test_mypy.py).

Compose (a service, endpoints, generic and typed middleware, chain), mount (an
HTTP route, a gRPC client and server), and test (call endpoints directly with
kitpy.testing helpers).  Nothing here runs; it only has to type-check.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass

import aiohttp
import grpc.aio
from aiohttp import web
from google.protobuf.struct_pb2 import Value

from kitpy import Context, Endpoint, GenericMiddleware, InvalidArgument, Key, Middleware, chain
from kitpy.circuitbreaker import CircuitBreaker, ConsecutiveFailures, circuit_breaker
from kitpy.endpoint import Req, Resp
from kitpy.log import call_logging
from kitpy.metrics import call_metrics
from kitpy.ratelimit import TokenBucket, rate_limit
from kitpy.resilience import RetryBudget, retry, timeout
from kitpy.testing import CapturedLogs, FakeClock, RequestMetrics, SpanRecorder
from kitpy.tracing import call_tracing
from kitpy.transport import grpc as kgrpc
from kitpy.transport.http import (
    Client,
    Server,
    add_routes,
    decode_json,
    decode_json_response,
    encode_json,
    encode_json_request,
)

USER: Key[str] = Key("user")


@dataclass(frozen=True)
class UppercaseRequest:
    s: str


@dataclass(frozen=True)
class UppercaseResponse:
    v: str


class StringService:
    async def uppercase(self, ctx: Context, s: str) -> str:
        if not s:
            raise InvalidArgument("empty string")
        return s.upper()


def make_uppercase_endpoint(svc: StringService) -> Endpoint[UppercaseRequest, UppercaseResponse]:
    async def uppercase(ctx: Context, request: UppercaseRequest) -> UppercaseResponse:
        return UppercaseResponse(await svc.uppercase(ctx, request.s))

    return uppercase


def passthrough(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
    """A generic middleware written by hand: fits every endpoint and keeps its types."""

    async def endpoint(ctx: Context, request: Req) -> Resp:
        return await next(ctx, request)

    return endpoint


def as_ada(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
    """A before-only layer as a plain ``def`` that returns the awaitable (no await)."""

    def endpoint(ctx: Context, request: Req) -> Awaitable[Resp]:
        return next(ctx.with_value(USER, "ada"), request)

    return endpoint


def strip_input(
    next: Endpoint[UppercaseRequest, UppercaseResponse],
) -> Endpoint[UppercaseRequest, UppercaseResponse]:
    """A typed middleware: it fits only this endpoint type."""

    async def endpoint(ctx: Context, request: UppercaseRequest) -> UppercaseResponse:
        return await next(ctx, UppercaseRequest(request.s.strip()))

    return endpoint


def compose(logs: CapturedLogs, metrics: RequestMetrics, spans: SpanRecorder) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(policy=ConsecutiveFailures(3), reset_timeout=5.0, clock=clock)
    generic: GenericMiddleware = chain(
        call_tracing(spans.tracer),
        call_logging(logs.logger),
        call_metrics(metrics.requests, metrics.latency),
        circuit_breaker(breaker),
        rate_limit(TokenBucket(100.0, burst=10, clock=clock)),
        timeout(1.0),
        passthrough,
    )
    typed: Middleware[UppercaseRequest, UppercaseResponse] = chain(strip_input, as_ada)
    endpoint = generic(typed(make_uppercase_endpoint(StringService())))
    _: Endpoint[UppercaseRequest, UppercaseResponse] = endpoint


async def test_directly() -> str:
    endpoint = make_uppercase_endpoint(StringService())
    ctx = Context(clock=FakeClock()).with_value(USER, "ada").with_timeout(1.0)
    user: str | None = ctx.get(USER)
    response = await endpoint(ctx, UppercaseRequest(s=user or ""))
    return response.v


def mount_http(app: web.Application, session: aiohttp.ClientSession) -> None:
    endpoint = make_uppercase_endpoint(StringService())
    add_routes(
        app, {"POST /uppercase": Server(endpoint, decode_json(UppercaseRequest), encode_json)}
    )
    client = Client(
        session, "POST", "http://127.0.0.1:8080/uppercase",
        encode_json_request, decode_json_response(UppercaseResponse),
    )  # fmt: skip
    remote: Endpoint[UppercaseRequest, UppercaseResponse] = retry(
        max_attempts=3, budget=RetryBudget()
    )(client)
    _ = remote


def encode_value(ctx: Context, request: UppercaseRequest) -> Value:
    return Value(string_value=request.s)


def decode_value(ctx: Context, message: Value) -> UppercaseResponse:
    return UppercaseResponse(message.string_value)


def decode_request(ctx: Context, message: Value) -> UppercaseRequest:
    return UppercaseRequest(message.string_value)


def encode_response(ctx: Context, response: UppercaseResponse) -> Value:
    return Value(string_value=response.v)


def mount_grpc(
    channel: grpc.aio.Channel,
) -> kgrpc.Server[UppercaseRequest, UppercaseResponse, Value, Value]:
    client: Endpoint[UppercaseRequest, UppercaseResponse] = kgrpc.Client(
        channel, "demo.v1.Strings", "Uppercase", encode_value, decode_value, Value
    )
    return kgrpc.Server(
        client, decode_request, encode_response, method="/demo.v1.Strings/Uppercase"
    )
