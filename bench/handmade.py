"""The full stack's work written by hand on raw aiohttp: the floor for ``ratio_http_full_stack``.

``ratio_http_full_stack`` compares kitpy doing a service's observable work
(tracing, a log line, metrics, a verified JWT, a limiter, a breaker) with raw
aiohttp doing none of it.  This app is the missing middle: one aiohttp handler
that does the work of :mod:`bench.fullstack` itself, calling the same libraries
the way their documentation suggests, with nothing of kitpy:

* tracing: the OpenTelemetry SDK of :func:`bench.fullstack.tracer_provider`
  (``ParentBased(TraceIdRatioBased(0.1))``, spans batched to a discarding
  exporter); a SERVER span ``POST /uppercase`` per request, continuing a W3C
  ``traceparent`` when one comes; the HTTP semantic-convention attributes, the
  status code and the body size are set only on a recorded span (the SDK's
  advice: check ``is_recording()`` first);
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
* the request id (the caller's ``X-Request-Id`` or a new one) echoed back, as
  ``raw`` in :mod:`bench.http_server` does.

A bad or missing token is a 401, the limiter a 429, an open breaker a 503, a
bad body a 400 -- all with a JSON error, all logged, counted and traced.  The
ratio of this app to ``raw`` says what the libraries' calls cost; kitpy's full
stack against this app says what kitpy adds on top of them.

Serve it with ``python bench/http_server.py --serve handmade
--variant handmade=bench.handmade:make_http_handmade_app``.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from typing import Any

import jwt
import msgspec
import orjson
import structlog
from aiohttp import web
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import CollectorRegistry, Counter, Histogram

from bench.fullstack import AUDIENCE, ISSUER, LIMIT_RATE, SAMPLE_RATIO, SECRET, tracer_provider
from bench.http_server import PATH, UppercaseRequest, UppercaseResponse
from kitpy.metrics.prometheus import LATENCY_BUCKETS

__all__ = ["make_http_handmade_app"]

_METHOD = "uppercase"
_SPAN_NAME = f"POST {PATH}"


class _Refused(Exception):
    """A request answered with an error status before the service ran."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def make_http_handmade_app(
    *,
    sample_ratio: float = SAMPLE_RATIO,
    provider: TracerProvider | None = None,
    log_file: Any = None,
) -> web.Application:
    """The hand-written full stack: ``POST /uppercase`` on a raw aiohttp app.

    ``provider`` and ``log_file`` (a binary file) are for tests; by default a
    new :func:`~bench.fullstack.tracer_provider` and ``/dev/null``.
    """
    tracer = (provider or tracer_provider(sample_ratio=sample_ratio)).get_tracer("handmade")
    propagator = TraceContextTextMapPropagator()
    log = structlog.wrap_logger(
        structlog.BytesLogger(log_file or open(os.devnull, "wb")),  # noqa: SIM115 - app-long
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        context_class=dict,
    ).bind(service="stringsvc")
    registry = CollectorRegistry()
    labels = ("method", "code")
    requests = Counter("handmade_requests", "Requests by outcome.", labels, registry=registry)
    latency = Histogram(
        "handmade_request_duration_seconds",
        "Request duration by outcome.",
        labels,
        registry=registry,
        buckets=LATENCY_BUCKETS,
    )
    children: dict[str, tuple[Any, Any]] = {}  # code -> (counter child, histogram child)
    verified: dict[str, tuple[dict[str, Any], float]] = {}  # token -> (claims, expiry)
    bucket = {"tokens": LIMIT_RATE, "at": time.monotonic()}
    breaker = {"failures": 0, "open_until": 0.0}
    decode = msgspec.json.Decoder(UppercaseRequest).decode
    encode = msgspec.json.Encoder().encode
    prefix, ids = os.urandom(6).hex() + "-", itertools.count(1)

    def claims_of(request: web.Request) -> dict[str, Any]:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _Refused(401, "UNAUTHENTICATED", "a bearer token is required")
        now = time.time()
        cached = verified.get(token)
        if cached is not None and now < cached[1]:
            return cached[0]
        try:
            claims: dict[str, Any] = jwt.decode(
                token, SECRET, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER
            )
        except jwt.InvalidTokenError as exc:
            raise _Refused(401, "UNAUTHENTICATED", f"invalid token: {exc}") from None
        verified[token] = (claims, float(claims["exp"]))
        return claims

    def take_token() -> None:
        now = time.monotonic()
        tokens = min(LIMIT_RATE, bucket["tokens"] + (now - bucket["at"]) * LIMIT_RATE)
        bucket["at"] = now
        if tokens < 1:
            raise _Refused(429, "RESOURCE_EXHAUSTED", "rate limit exceeded")
        bucket["tokens"] = tokens - 1

    async def uppercase(request: web.Request) -> web.Response:
        request_id = request.headers.get("X-Request-Id") or f"{prefix}{next(ids)}"
        parent = propagator.extract(request.headers) if "traceparent" in request.headers else None
        span = tracer.start_span(_SPAN_NAME, parent, SpanKind.SERVER)
        recording = span.is_recording()
        if recording:
            host, _, port = request.host.rpartition(":")
            span.set_attributes(
                {
                    "http.request.method": request.method,
                    "url.path": request.path,
                    "url.scheme": request.scheme,
                    "server.address": host or request.host,
                    "server.port": int(port) if port.isdigit() else 0,
                    "client.address": request.remote or "",
                    "user_agent.original": request.headers.get("User-Agent", ""),
                    "http.route": PATH,
                    "kitpy.endpoint": _METHOD,
                }
            )
        start = time.perf_counter()
        try:
            claims_of(request)
            take_token()
            if time.monotonic() < breaker["open_until"]:
                raise _Refused(503, "UNAVAILABLE", "circuit breaker is open")
            try:
                req = decode(await request.read())
            except msgspec.MsgspecError as exc:
                raise _Refused(400, "INVALID_ARGUMENT", str(exc)) from None
            if not req.s:
                raise _Refused(400, "INVALID_ARGUMENT", "empty string")
            breaker["failures"] = 0
            status, code, error = 200, "OK", None
            body = encode(UppercaseResponse(v=req.s.upper()))
        except _Refused as refused:
            status, code, error = refused.status, refused.code, refused.message
            body = orjson.dumps({"error": error, "code": code})
        except Exception as exc:  # a fault of the service: the breaker counts it
            breaker["failures"] += 1
            if breaker["failures"] >= 5:
                breaker["open_until"] = time.monotonic() + 10.0
            status, code, error = 500, "INTERNAL", type(exc).__name__
            body = orjson.dumps({"error": "internal error", "code": code})
        took = time.perf_counter() - start
        pair = children.get(code)
        if pair is None:
            pair = children[code] = (
                requests.labels(_METHOD, code),
                latency.labels(_METHOD, code),
            )
        pair[0].inc()
        pair[1].observe(took)
        ids_ = span.get_span_context()
        fields = {
            "took": took,
            "code": code,
            "method": _METHOD,
            "request_id": request_id,
            "trace_id": trace.format_trace_id(ids_.trace_id),
            "span_id": trace.format_span_id(ids_.span_id),
        }
        if error is None:
            log.info("endpoint call", **fields)
        else:
            log.warning("endpoint call", error=error, **fields)
        if recording:
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
