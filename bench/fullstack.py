"""The kitpy full-stack stringsvc servers that ``bench/report.py`` measures (HTTP and gRPC).

Both are examples/stringsvc as its template wires it, plus every layer a
production service would add, all built with kitpy's own APIs:

* tracing: the template's ``build_observability`` -- one span per request: the
  SERVER span from the transport hook, which the endpoint's tracing middleware
  joins (``endpoint_spans=False``; ``endpoint_spans=True`` adds a child span per
  endpoint call), ``ParentBased(TraceIdRatioBased(0.1))`` head sampling, spans
  batched to an exporter that drops them (:class:`Discard`);
* logging: one structlog JSON line per call (orjson, to ``/dev/null``), with the
  request id and trace id;
* metrics: request counter + latency histogram on a prometheus-client registry
  (served on ``/metrics`` by the HTTP app);
* JWT: the bearer token is read by ``http_to_context`` / ``grpc_to_context`` and
  verified by ``jwt_parser`` (HS256, audience and issuer checked) with its
  verified-token cache -- the load generator sends :func:`bench_token` every time;
* a circuit breaker (:class:`~kitpy.circuitbreaker.CircuitBreaker`, five
  consecutive failures) and a token-bucket limiter whose rate never rejects.

Endpoint middleware, outermost first: tracing, logging, metrics, JWT, limiter,
breaker -- so rejected calls are still traced, logged and counted.

Run one on its own (prints the port, stops when stdin closes)::

    python bench/fullstack.py --serve http
    python bench/fullstack.py --serve grpc --sample-ratio 1
"""

from __future__ import annotations

import os
import sys

# ``python bench/<script>.py`` puts bench/ first on sys.path, where bench/jwt.py would
# shadow pyjwt's ``jwt`` package (imported by kitpy.auth.jwt): drop that entry first.
_BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _BENCH_DIR]
sys.path.insert(0, os.path.dirname(_BENCH_DIR))  # the repository root: kitpy, examples, bench

import argparse
import asyncio
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

import jwt
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from examples.stringsvc.endpoints import (
    Endpoints,
    make_count_endpoint,
    make_tokens_endpoint,
    make_uppercase_endpoint,
)
from examples.stringsvc.observability import Observability, build_observability
from examples.stringsvc.service import BasicStringService
from kitpy import Endpoint, GenericMiddleware, chain
from kitpy.auth import grpc_to_context, http_to_context
from kitpy.auth.jwt import jwt_parser
from kitpy.circuitbreaker import CircuitBreaker, ConsecutiveFailures, circuit_breaker
from kitpy.endpoint import Req, Resp
from kitpy.log import call_logging
from kitpy.metrics import call_metrics
from kitpy.metrics.prometheus import request_metrics
from kitpy.ratelimit import TokenBucket, rate_limit
from kitpy.tracing import call_tracing, log_fields

if TYPE_CHECKING:
    from aiohttp import web

    from kitpy.transport.grpc import GrpcServer

__all__ = [
    "AUDIENCE",
    "ISSUER",
    "SAMPLE_RATIO",
    "SECRET",
    "Discard",
    "LAYERS",
    "FullStack",
    "bench_token",
    "build_full_stack",
    "make_http_full_stack_app",
    "make_http_full_stack_app_all_sampled",
    "make_http_full_stack_app_unsampled",
    "start_grpc_full_stack",
    "tracer_provider",
]

SECRET = b"kitpy-benchmark-hs256-secret-not-for-production"
"""The HS256 key shared by the servers and the load generator."""
AUDIENCE = "stringsvc"
ISSUER = "kitpy-bench"
SAMPLE_RATIO = 0.1
"""Head-sampling ratio for every traced variant (kitpy and FastAPI)."""
LIMIT_RATE = 1_000_000.0
"""Token-bucket rate (per second) and burst: far above any rate reached here, never rejects."""


class Discard(SpanExporter):
    """A span exporter that drops what it is given: spans are still built, batched, handed over."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def tracer_provider(
    *, service_name: str = "stringsvc", sample_ratio: float = SAMPLE_RATIO
) -> TracerProvider:
    """A provider sampling ``ParentBased(TraceIdRatioBased(ratio))``, batching to :class:`Discard`.

    The same configuration ``build_observability`` gives the kitpy variants; the
    FastAPI variant uses this function, so both sides pay for the same tracing.
    """
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
    )
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    return provider


def bench_token(*, lifetime: float = 3600.0) -> str:
    """The HS256 bearer token the load generator sends (valid for ``lifetime`` seconds)."""
    now = int(time.time())
    claims = {"sub": "bench", "aud": AUDIENCE, "iss": ISSUER, "iat": now, "exp": now + lifetime}
    return jwt.encode(claims, SECRET, algorithm="HS256")


@dataclass
class FullStack:
    """The stringsvc endpoints with every layer, and the observability they report to."""

    endpoints: Endpoints
    observability: Observability
    breaker: CircuitBreaker
    limiter: TokenBucket


LAYERS = ("tracing", "logging", "metrics", "jwt", "limiter", "breaker")
"""The endpoint layers, outermost first; ``without`` in the builders drops some (for ablations)."""


def build_full_stack(
    *,
    log_stream: TextIO | None = None,
    sample_ratio: float = SAMPLE_RATIO,
    without: Collection[str] = (),
    endpoint_spans: bool = False,
) -> FullStack:
    """Build the full-stack endpoints; log lines go to ``log_stream`` (default ``/dev/null``).

    ``without`` names :data:`LAYERS` to leave out (``"tracing"`` also drops the
    transport's SERVER span), to measure what each layer costs in place.
    ``endpoint_spans=True`` gives every endpoint call a span of its own under
    the SERVER span (two spans per request).
    """
    unknown = set(without) - set(LAYERS)
    if unknown:
        raise ValueError(f"unknown layers {sorted(unknown)}; choose from {LAYERS}")
    if log_stream is None:
        log_stream = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the server
    # The template's wiring: the same sampler and batch processor as tracer_provider().
    obs = build_observability(
        log_stream=log_stream,
        sample_ratio=sample_ratio,
        span_exporter=Discard(),
        endpoint_spans=endpoint_spans,
    )
    breaker = CircuitBreaker(policy=ConsecutiveFailures(5), reset_timeout=10.0, name="stringsvc")
    limiter = TokenBucket(rate=LIMIT_RATE, burst=int(LIMIT_RATE))
    parser = jwt_parser(SECRET, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)
    # ablations count in their own (kitpy_bench_*) pair: the template's pair is private to it
    requests, latency = request_metrics(obs.registry, subsystem="bench")
    inner = {
        "jwt": parser,
        "limiter": rate_limit(limiter),
        "breaker": circuit_breaker(breaker),
    }

    def stack(method: str) -> GenericMiddleware | None:
        """The layers for one endpoint, each given the operation name."""
        if without:  # the template's server_middleware() spelled out, so layers can be dropped
            layers: dict[str, GenericMiddleware] = {
                "tracing": call_tracing(
                    obs.tracer,
                    name=f"{obs.service_name}.{method}",
                    join_server_span=not endpoint_spans,
                ),
                "logging": call_logging(obs.logger, name=method, fields=log_fields),
                "metrics": call_metrics(requests, latency, name=method),
            }
        else:
            layers = {"observability": obs.server_middleware(method)}  # tracing, logging, metrics
        kept = [mw for name, mw in (layers | inner).items() if name not in without]
        return chain(*kept) if kept else None

    def wrap(endpoint: Endpoint[Req, Resp], method: str) -> Endpoint[Req, Resp]:
        layers = stack(method)
        return endpoint if layers is None else layers(endpoint)

    svc = BasicStringService()
    endpoints = Endpoints(
        uppercase_endpoint=wrap(make_uppercase_endpoint(svc), "uppercase"),
        count_endpoint=wrap(make_count_endpoint(svc), "count"),
        tokens_endpoint=make_tokens_endpoint(svc),  # not measured: the bench calls Uppercase
    )
    if "tracing" in without:  # no SERVER span either
        obs.http_server_before = obs.http_server_finalizer = ()
        obs.grpc_server_before = obs.grpc_server_finalizer = ()
    return FullStack(endpoints, obs, breaker, limiter)


def make_http_full_stack_app(
    *,
    without: Collection[str] = (),
    endpoint_spans: bool = False,
    sample_ratio: float = SAMPLE_RATIO,
) -> web.Application:
    """The full-stack HTTP app: ``POST /uppercase``, ``POST /count``, ``/healthz``, ``/metrics``.

    An app factory for ``bench/http_server.py``::

        python bench/http_server.py --variant full_stack=bench.fullstack:make_http_full_stack_app
    """
    from examples.stringsvc.transport_http import make_http_app

    stack = build_full_stack(
        without=without, endpoint_spans=endpoint_spans, sample_ratio=sample_ratio
    )
    obs = stack.observability
    app = make_http_app(
        stack.endpoints,
        before=(*obs.http_server_before, http_to_context),
        finalizer=obs.http_server_finalizer,
    )
    app.router.add_get("/metrics", obs.metrics_handler)
    return app


def make_http_full_stack_app_unsampled() -> web.Application:
    """The full-stack HTTP app tracing no request (0 % sampled): what tracing costs at least."""
    return make_http_full_stack_app(sample_ratio=0.0)


def make_http_full_stack_app_all_sampled() -> web.Application:
    """The full-stack HTTP app tracing every request (100 % sampled)."""
    return make_http_full_stack_app(sample_ratio=1.0)


async def start_grpc_full_stack(
    *, port: int = 0, sample_ratio: float = SAMPLE_RATIO
) -> tuple[GrpcServer, int]:
    """Start the full-stack gRPC server on 127.0.0.1 (``port=0``: a free one); return it, port."""
    from examples.stringsvc.transport_grpc import start_grpc_server

    stack = build_full_stack(sample_ratio=sample_ratio)
    obs = stack.observability
    return await start_grpc_server(
        stack.endpoints,
        port=port,
        before=(*obs.grpc_server_before, grpc_to_context),
        finalizer=obs.grpc_server_finalizer,
    )


async def _serve(transport: str, sample_ratio: float) -> None:
    """Serve until stdin closes, after printing the port (the protocol of bench/http_server.py)."""
    loop = asyncio.get_running_loop()
    if transport == "grpc":
        from bench.grpc_server import pin_loop_thread
        from bench.http_server import cpu_split

        pin_loop_thread(cpu_split()[0])  # first, as bench/grpc_server.py's servers: every thread
        server, port = await start_grpc_full_stack(sample_ratio=sample_ratio)
        print(port, flush=True)
        await loop.run_in_executor(None, sys.stdin.read)
        await server.stop(grace=1.0)
        return
    from bench.http_server import serve_app

    await serve_app(make_http_full_stack_app(sample_ratio=sample_ratio))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", choices=["http", "grpc"], required=True)
    parser.add_argument(
        "--sample-ratio", type=float, default=SAMPLE_RATIO, help="fraction of requests traced"
    )
    args = parser.parse_args()
    asyncio.run(_serve(args.serve, args.sample_ratio))


if __name__ == "__main__":
    main()
