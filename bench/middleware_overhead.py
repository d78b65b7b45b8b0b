"""Benchmark: kitpy's observability middlewares vs the same library calls made by hand.

For each of logging (structlog, JSON to /dev/null), metrics (prometheus-client
counter + histogram) and tracing (OpenTelemetry SDK span, recorded and
exported to a discarding exporter), and for the three together, times a call
through the kitpy middleware and through a hand-written ``async def`` making
the same library calls around the same endpoint (the floor); the endpoints are
named, the floors pass the same name as a constant.  ``tracing_head_sampled_out``
gives both a provider with :class:`~kitpy.tracing.HeadSampler` (ratio 0): kitpy's
layer decides before the SDK, the hand-written floor calls ``start_span``.  The two are
alternated over several rounds and the median of the per-round ratios is
reported.  Run: ``python bench/middleware_overhead.py``.

:func:`make_full_stack_app` is the same uppercase service as
``bench/http_server.py``'s kitpy variant with all three middlewares and the
tracing hooks, for measuring the full stack in a real server::

    python bench/http_server.py --variant full_stack=bench.middleware_overhead:make_full_stack_app
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import Tracer

from kitpy import Context, chain
from kitpy.log import call_logging, make_logger
from kitpy.metrics import call_metrics
from kitpy.metrics.prometheus import CollectorRegistry, request_metrics
from kitpy.tracing import HeadSampler, call_tracing
from kitpy.tracing.context import EMPTY

if TYPE_CHECKING:
    from aiohttp import web

ROUNDS = 9
CALLS = 4_000
Call = Callable[[Context, int], Awaitable[int]]


class Discard(SpanExporter):
    """An exporter that drops spans: the span is still built, recorded and handed over."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


async def bare(ctx: Context, request: int) -> int:
    return request


def tracer_for(sampled: bool, *, head: bool = False) -> Tracer:
    """A tracer recording every span or none; ``head``: none, through a HeadSampler."""
    if head:
        sampler = HeadSampler.ratio(0.0)
        provider = TracerProvider(sampler=sampler, id_generator=sampler)
    else:
        provider = TracerProvider(sampler=None if sampled else ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(Discard()))
    return provider.get_tracer("bench")


def build() -> dict[str, tuple[Call, Call]]:
    """name -> (kitpy endpoint, hand-written floor), sharing the same sinks."""
    sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the benchmark
    logger = make_logger(stream=sink)
    info = logger.info
    requests, latency = request_metrics(CollectorRegistry())
    ok_count = requests.labels(method="bare", code="OK")
    ok_latency = latency.labels(method="bare", code="OK")
    tracers = {
        "tracing": tracer_for(True),
        "tracing_sampled_out": tracer_for(False),
        # the same provider for both: kitpy samples first, the floor calls the SDK's start_span
        "tracing_head_sampled_out": tracer_for(False, head=True),
    }
    clock = time.perf_counter

    async def direct_logging(ctx: Context, request: int) -> int:
        start = clock()
        response = await bare(ctx, request)
        info("endpoint call", method="bare", took=clock() - start, code="OK")
        return response

    async def direct_metrics(ctx: Context, request: int) -> int:
        start = clock()
        response = await bare(ctx, request)
        ok_count.inc()
        ok_latency.observe(clock() - start)
        return response

    def direct_tracing(tracer: Tracer) -> Call:
        async def call(ctx: Context, request: int) -> int:
            span = tracer.start_span("bare", EMPTY)
            try:
                return await bare(ctx, request)
            finally:
                span.end()

        return call

    tracer = tracers["tracing"]

    async def direct_all(ctx: Context, request: int) -> int:
        span = tracer.start_span("bare", EMPTY)
        start = clock()
        try:
            response = await bare(ctx, request)
        finally:
            took = clock() - start
            ok_count.inc()
            ok_latency.observe(took)
            info("endpoint call", method="bare", took=took, code="OK")
            span.end()
        return response

    # named, as a service's endpoints are: the floors pass the name "bare" as a constant too
    log_mw = call_logging(logger, name="bare")
    metrics_mw = call_metrics(requests, latency, name="bare")
    pairs: dict[str, tuple[Call, Call]] = {
        "logging": (log_mw(bare), direct_logging),
        "metrics": (metrics_mw(bare), direct_metrics),
    }
    for name, t in tracers.items():
        pairs[name] = (call_tracing(t, name="bare")(bare), direct_tracing(t))
    all_mw = chain(call_tracing(tracer, name="bare"), log_mw, metrics_mw)
    pairs["all"] = (all_mw(bare), direct_all)
    return pairs


def make_sampled_full_stack_app() -> web.Application:
    """:func:`make_full_stack_app` with 10% head sampling, as a service would run it."""
    return make_full_stack_app(sample_ratio=0.1)


def make_full_stack_app(*, sample_ratio: float = 1.0) -> web.Application:
    """An aiohttp app: bench/http_server.py's uppercase endpoint with tracing, logging, metrics.

    Spans are sampled ``ParentBased(TraceIdRatioBased(sample_ratio))`` and exported
    in batches to a discarding exporter; log lines go to /dev/null as JSON.
    """
    from aiohttp import web
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    from bench.http_server import PATH, UppercaseRequest, UppercaseResponse
    from kitpy import InvalidArgument
    from kitpy.metrics.prometheus import metrics_handler
    from kitpy.tracing import http_server_before, http_server_finalizer, log_fields
    from kitpy.transport.http import Server, decode_json, encode_json

    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(sample_ratio)))
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    tracer = provider.get_tracer("bench")
    logger = make_logger(stream=open(os.devnull, "w"))  # noqa: SIM115 - lives with the app
    registry = CollectorRegistry()
    requests, latency = request_metrics(registry)

    async def uppercase(ctx: Context, request: UppercaseRequest) -> UppercaseResponse:
        if not request.s:
            raise InvalidArgument("empty string")
        return UppercaseResponse(v=request.s.upper())

    stack = chain(
        call_tracing(tracer),
        call_logging(logger, fields=log_fields),
        call_metrics(requests, latency),
    )
    app = web.Application()
    server = Server(
        stack(uppercase),
        decode_json(UppercaseRequest),
        encode_json,
        before=[http_server_before(tracer)],
        finalizer=[http_server_finalizer()],
    )
    app.router.add_post(PATH, server)
    app.router.add_get("/metrics", metrics_handler(registry))
    return app


def make_full_stack_sampled_app() -> web.Application:
    """:func:`make_full_stack_app` with 10% head sampling."""
    return make_full_stack_app(sample_ratio=0.1)


async def time_calls(endpoint: Call) -> float:
    ctx = Context()
    start = time.perf_counter_ns()
    for i in range(CALLS):
        await endpoint(ctx, i)
    return (time.perf_counter_ns() - start) / CALLS


async def measure(kit: Call, direct: Call) -> tuple[float, float, float]:
    await time_calls(kit)  # warm-up
    await time_calls(direct)
    kit_ns: list[float] = []
    direct_ns: list[float] = []
    ratios: list[float] = []
    for _ in range(ROUNDS):
        k = await time_calls(kit)
        d = await time_calls(direct)
        kit_ns.append(k)
        direct_ns.append(d)
        ratios.append(k / d)
    return statistics.median(kit_ns), statistics.median(direct_ns), statistics.median(ratios)


async def main() -> None:
    figures: dict[str, Any] = {"bench": "middleware_overhead"}
    bare_ns = statistics.median([await time_calls(bare) for _ in range(ROUNDS)])
    figures["bare_ns"] = round(bare_ns)
    print(f"bare endpoint: {bare_ns:.0f} ns/call")
    print(f"{'middleware':>24}  {'kitpy ns/call':>13}  {'direct ns/call':>14}  {'ratio':>6}")
    for name, (kit, direct) in build().items():
        k, d, ratio = await measure(kit, direct)
        print(f"{name:>24}  {k:>13.0f}  {d:>14.0f}  {ratio:>6.3f}")
        figures[f"{name}_kitpy_ns"] = round(k)
        figures[f"{name}_direct_ns"] = round(d)
        figures[f"ratio_{name}"] = round(ratio, 3)
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
