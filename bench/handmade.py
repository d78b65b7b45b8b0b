"""The full stack's work written by hand, with no kitpy: the floor for the full-stack ratios.

``ratio_http_full_stack`` and ``ratio_grpc_full_stack`` compare kitpy doing a
service's observable work (tracing, a log line, metrics, a verified JWT, a
limiter, a breaker) with raw aiohttp / grpc.aio doing none of it.  These
servers are the missing middle: a raw aiohttp handler and a raw grpc.aio
servicer that do the work of :mod:`bench.fullstack` themselves, calling the same
libraries the way their documentation suggests:

* tracing: the OpenTelemetry SDK of :func:`bench.fullstack.tracer_provider`
  (``ParentBased(TraceIdRatioBased(0.1))``, spans batched to a discarding
  exporter); a SERVER span per request, continuing a W3C ``traceparent`` when
  one comes; the semantic-convention attributes (HTTP or RPC) and the outcome
  are set only on a recorded span (the SDK's advice: check ``is_recording()``);
* logging: structlog with the setup its performance notes give -- a filtering
  bound logger, a plain dict context, ``JSONRenderer`` on orjson, a
  ``BytesLogger`` to ``/dev/null`` -- one line per request with the service,
  ``took``, ``code``, ``method``, the request id and the trace and span ids;
* metrics: a prometheus-client counter and latency histogram labelled method and
  code, their children made once per label pair;
* JWT: the bearer token checked by pyjwt (HS256, audience, issuer, expiry),
  the claims of a verified token kept in a dict until the token expires (the
  cache kitpy's parser has too);
* a token bucket and a consecutive-failures breaker, a few lines each;
* the request id (the caller's ``X-Request-Id`` or a new one) sent back, as the
  raw servers of :mod:`bench.http_server` and :mod:`bench.grpc_server` do.

A missing or bad token is UNAUTHENTICATED (HTTP 401), the limiter
RESOURCE_EXHAUSTED (429), an open breaker UNAVAILABLE (503), a bad request
INVALID_ARGUMENT (400) -- each logged, counted and traced.  Against ``raw``
these servers say what the libraries' calls cost; kitpy's full stack against
them says what kitpy adds on top of those calls (or saves).

Serve one (prints the port, stops when stdin closes)::

    python bench/handmade.py --serve http
    python bench/handmade.py --serve grpc
"""

from __future__ import annotations

import os
import sys

# As in bench/fullstack.py: bench/jwt.py must not shadow pyjwt; the repository root is importable.
_BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _BENCH_DIR]
sys.path.insert(0, os.path.dirname(_BENCH_DIR))

import argparse
import asyncio
import itertools
import logging
import time
from collections.abc import Mapping
from typing import Any, BinaryIO

import grpc
import grpc.aio
import jwt
import msgspec
import orjson
import structlog
from aiohttp import web
from opentelemetry import trace
from opentelemetry.context import Context as OtelContext
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue
from prometheus_client import CollectorRegistry, Counter, Histogram

from bench.fullstack import AUDIENCE, ISSUER, LIMIT_RATE, SAMPLE_RATIO, SECRET, tracer_provider
from bench.grpc_server import pin_loop_thread, serve_servicer
from bench.http_server import PATH, UppercaseRequest, UppercaseResponse, cpu_split, serve_app
from examples.stringsvc.pb import stringsvc_pb2 as pb
from examples.stringsvc.pb import stringsvc_pb2_grpc as pb_grpc
from kitpy.metrics.prometheus import LATENCY_BUCKETS  # the same buckets: the same observe work

__all__ = ["HandmadeServicer", "HandmadeStack", "Refused", "make_http_handmade_app"]

METHOD = "uppercase"
GRPC_METHOD = "stringsvc.v1.StringService/Uppercase"


class Refused(Exception):
    """A request refused with ``code`` (a gRPC status name) and HTTP ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class HandmadeStack:
    """What both hand-written servers share: one tracer, logger, registry, cache, bucket, breaker.

    ``log_file`` is the binary file the log lines go to (``/dev/null`` when
    served for the report); ``provider`` is for tests, by default a new
    :func:`~bench.fullstack.tracer_provider`.
    """

    def __init__(
        self,
        *,
        sample_ratio: float = SAMPLE_RATIO,
        provider: TracerProvider | None = None,
        log_file: BinaryIO,
    ) -> None:
        provider = provider or tracer_provider(sample_ratio=sample_ratio)
        self.tracer = provider.get_tracer("handmade")
        self.propagator = TraceContextTextMapPropagator()
        self.log = structlog.wrap_logger(
            structlog.BytesLogger(log_file),
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.JSONRenderer(serializer=orjson.dumps),
            ],
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
            context_class=dict,
        ).bind(service="stringsvc")
        self.registry = CollectorRegistry()
        labels = ("method", "code")
        self.requests = Counter(
            "handmade_requests", "Requests by outcome.", labels, registry=self.registry
        )
        self.latency = Histogram(
            "handmade_request_duration_seconds",
            "Request duration by outcome.",
            labels,
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self.children: dict[str, tuple[Any, Any]] = {}  # code -> (counter, histogram) children
        self.verified: dict[str, tuple[dict[str, Any], float]] = {}  # token -> (claims, expiry)
        self.tokens, self.filled_at = LIMIT_RATE, time.monotonic()
        self.failures, self.open_until = 0, 0.0
        self.prefix, self.ids = os.urandom(6).hex() + "-", itertools.count(1)

    def request_id(self, given: object) -> str:
        """The caller's request id, else a new one."""
        return given if isinstance(given, str) and given else f"{self.prefix}{next(self.ids)}"

    def start_span(self, name: str, carrier: Mapping[str, Any]) -> Span:
        """A SERVER span continuing the carrier's ``traceparent`` (W3C), else a new trace."""
        parent: OtelContext | None = None
        if "traceparent" in carrier:
            parent = self.propagator.extract(carrier)
        return self.tracer.start_span(name, parent, SpanKind.SERVER)

    def claims(self, authorization: object) -> dict[str, Any]:
        """The claims of the ``Bearer`` token in ``authorization``, else :class:`Refused`."""
        if not isinstance(authorization, str):
            authorization = ""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Refused(401, "UNAUTHENTICATED", "a bearer token is required")
        now = time.time()
        cached = self.verified.get(token)
        if cached is not None and now < cached[1]:
            return cached[0]
        try:
            claims: dict[str, Any] = jwt.decode(
                token, SECRET, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER
            )
        except jwt.InvalidTokenError as exc:
            raise Refused(401, "UNAUTHENTICATED", f"invalid token: {exc}") from None
        self.verified[token] = (claims, float(claims["exp"]))
        return claims

    def admit(self) -> None:
        """Take a token from the bucket and pass the breaker, else :class:`Refused`."""
        now = time.monotonic()
        tokens = min(LIMIT_RATE, self.tokens + (now - self.filled_at) * LIMIT_RATE)
        self.filled_at = now
        if tokens < 1:
            raise Refused(429, "RESOURCE_EXHAUSTED", "rate limit exceeded")
        self.tokens = tokens - 1
        if now < self.open_until:
            raise Refused(503, "UNAVAILABLE", "circuit breaker is open")

    def succeeded(self) -> None:
        """The service answered: the breaker's failure count starts again."""
        self.failures = 0

    def failed(self) -> None:
        """The service failed: five in a row open the breaker for ten seconds."""
        self.failures += 1
        if self.failures >= 5:
            self.open_until = time.monotonic() + 10.0

    def finish(
        self, span: Span, request_id: str, code: str, error: str | None, took: float
    ) -> None:
        """Count and time the request and write its log line (with the span's ids)."""
        pair = self.children.get(code)
        if pair is None:
            pair = self.children[code] = (
                self.requests.labels(METHOD, code),
                self.latency.labels(METHOD, code),
            )
        pair[0].inc()
        pair[1].observe(took)
        ids = span.get_span_context()
        fields = {
            "took": took,
            "code": code,
            "method": METHOD,
            "request_id": request_id,
            "trace_id": trace.format_trace_id(ids.trace_id),
            "span_id": trace.format_span_id(ids.span_id),
        }
        if error is None:
            self.log.info("endpoint call", **fields)
        else:
            self.log.warning("endpoint call", error=error, **fields)


def _http_attributes(request: web.Request) -> dict[str, AttributeValue]:
    """The HTTP semantic-convention attributes of a recorded SERVER span."""
    host, _, port = request.host.rpartition(":")
    return {
        "http.request.method": request.method,
        "url.path": request.path,
        "url.scheme": request.scheme,
        "server.address": host or request.host,
        "server.port": int(port) if port.isdigit() else 0,
        "client.address": request.remote or "",
        "user_agent.original": request.headers.get("User-Agent", ""),
        "http.route": PATH,
        "kitpy.endpoint": METHOD,
    }


def make_http_handmade_app(
    *,
    sample_ratio: float = SAMPLE_RATIO,
    provider: TracerProvider | None = None,
    log_file: BinaryIO,
) -> web.Application:
    """The hand-written full stack on a raw aiohttp app: ``POST /uppercase``.

    The arguments are :class:`HandmadeStack`'s.
    """
    stack = HandmadeStack(sample_ratio=sample_ratio, provider=provider, log_file=log_file)
    decode = msgspec.json.Decoder(UppercaseRequest).decode
    encode = msgspec.json.Encoder().encode
    span_name = f"POST {PATH}"

    async def uppercase(request: web.Request) -> web.Response:
        request_id = stack.request_id(request.headers.get("X-Request-Id"))
        span = stack.start_span(span_name, request.headers)
        if span.is_recording():
            span.set_attributes(_http_attributes(request))
        start = time.perf_counter()
        try:
            stack.claims(request.headers.get("Authorization"))
            stack.admit()
            try:
                req = decode(await request.read())
            except msgspec.MsgspecError as exc:
                raise Refused(400, "INVALID_ARGUMENT", str(exc)) from None
            if not req.s:
                raise Refused(400, "INVALID_ARGUMENT", "empty string")
            body = encode(UppercaseResponse(v=req.s.upper()))
            stack.succeeded()
            status, code, error = 200, "OK", None
        except Refused as refused:
            status, code, error = refused.status, refused.code, refused.message
            body = orjson.dumps({"error": error, "code": code})
        except Exception as exc:  # a fault of the service: the breaker counts it
            stack.failed()
            status, code, error = 500, "INTERNAL", type(exc).__name__
            body = orjson.dumps({"error": "internal error", "code": code})
        stack.finish(span, request_id, code, error, time.perf_counter() - start)
        if span.is_recording():
            span.set_attributes(
                {"http.response.status_code": status, "http.response.body.size": len(body)}
            )
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
        span.end()
        return web.Response(
            body=body,
            status=status,
            content_type="application/json",
            headers={"X-Request-Id": request_id},
        )

    app = web.Application()
    app.router.add_post(PATH, uppercase)
    return app


class HandmadeServicer(pb_grpc.StringServiceServicer):
    """The hand-written full stack on a raw grpc.aio servicer: ``Uppercase``.

    Register it with ``pb_grpc.add_StringServiceServicer_to_server`` as
    :mod:`bench.grpc_server`'s raw servicer is; the arguments are
    :class:`HandmadeStack`'s.
    """

    def __init__(self, **stack: Any) -> None:
        self.stack = HandmadeStack(**stack)
        self.attributes: dict[str, AttributeValue] = {
            "rpc.system": "grpc",
            "rpc.service": "stringsvc.v1.StringService",
            "rpc.method": "Uppercase",
        }

    async def Uppercase(
        self, request: pb.UppercaseRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.UppercaseResponse:
        stack = self.stack
        metadata = dict(context.invocation_metadata() or ())
        request_id = stack.request_id(metadata.get("x-request-id"))
        context.set_trailing_metadata((("x-request-id", request_id),))
        span = stack.start_span(GRPC_METHOD, metadata)
        if span.is_recording():
            span.set_attributes(self.attributes)
        start = time.perf_counter()
        reply = None
        try:
            stack.claims(metadata.get("authorization"))
            stack.admit()
            if not request.s:
                raise Refused(400, "INVALID_ARGUMENT", "empty string")
            reply = pb.UppercaseResponse(v=request.s.upper())
            stack.succeeded()
            code, error = "OK", None
        except Refused as refused:
            code, error = refused.code, refused.message
        except Exception as exc:  # a fault of the service: the breaker counts it
            stack.failed()
            code, error = "INTERNAL", type(exc).__name__
        stack.finish(span, request_id, code, error, time.perf_counter() - start)
        status = grpc.StatusCode[code]
        if span.is_recording():
            span.set_attribute("rpc.grpc.status_code", status.value[0])
            if code in ("INTERNAL", "UNAVAILABLE"):
                span.set_status(Status(StatusCode.ERROR))
        span.end()
        if reply is None:
            await context.abort(status, error or "")
        return reply


async def _serve(transport: str, log_file: BinaryIO) -> None:
    """Serve until stdin closes, after printing the port (the protocol of bench/http_server.py)."""
    pin_loop_thread(cpu_split()[0])  # first, as the other bench servers: every thread
    if transport == "grpc":
        await serve_servicer(HandmadeServicer(log_file=log_file))
    else:
        await serve_app(make_http_handmade_app(log_file=log_file))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", choices=["http", "grpc"], required=True)
    transport = parser.parse_args().serve
    with open(os.devnull, "wb") as log_file:  # the log lines are written, then dropped
        asyncio.run(_serve(transport, log_file))


if __name__ == "__main__":
    main()
