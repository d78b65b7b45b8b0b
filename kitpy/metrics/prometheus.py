"""Prometheus instruments (prometheus-client) on a registry the caller owns.

Every function takes the ``CollectorRegistry`` explicitly, so prometheus-client's
global default registry is never touched.  Counters and histograms are
:mod:`kitpy.metrics.lean`'s: kept by kitpy at a third of prometheus-client's
cost per call, exported by the registry with the same samples.  Gauges are
prometheus-client's own.  Every instrument satisfies :mod:`kitpy.metrics`'
protocols.

Example::

    registry = CollectorRegistry()
    requests, latency = request_metrics(registry)          # kitpy_server_requests_total, ...
    endpoint = call_metrics(requests, latency)(endpoint)
    app.router.add_get("/metrics", metrics_handler(registry))
"""

from __future__ import annotations

from kitpy._extras import require

require("prometheus_client", extra="prometheus")

from collections.abc import Sequence
from typing import TYPE_CHECKING

import prometheus_client
from prometheus_client import CollectorRegistry

from kitpy.metrics.lean import LeanCounter, LeanHistogram

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler

__all__ = [
    "LATENCY_BUCKETS",
    "STREAM_BUCKETS",
    "CollectorRegistry",
    "LeanCounter",
    "LeanHistogram",
    "counter",
    "gauge",
    "histogram",
    "metrics_handler",
    "request_metrics",
    "stream_instruments",
]

LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Latency buckets in seconds, from 0.5 ms (an in-process endpoint) to 10 s."""

STREAM_BUCKETS: tuple[float, ...] = (
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0,
)  # fmt: skip
"""Stream duration buckets in seconds, from 10 ms (a short server stream) to an hour."""


def counter(
    registry: CollectorRegistry,
    name: str,
    documentation: str,
    labelnames: Sequence[str] = (),
    *,
    namespace: str = "",
    subsystem: str = "",
) -> LeanCounter:
    """A counter registered on ``registry`` (exposed with a ``_total`` suffix)."""
    return LeanCounter(
        registry, name, documentation, labelnames, namespace=namespace, subsystem=subsystem
    )


def gauge(
    registry: CollectorRegistry,
    name: str,
    documentation: str,
    labelnames: Sequence[str] = (),
    *,
    namespace: str = "",
    subsystem: str = "",
) -> prometheus_client.Gauge:
    """A Gauge registered on ``registry``."""
    return prometheus_client.Gauge(
        name,
        documentation,
        labelnames,
        namespace=namespace,
        subsystem=subsystem,
        registry=registry,
    )


def histogram(
    registry: CollectorRegistry,
    name: str,
    documentation: str,
    labelnames: Sequence[str] = (),
    *,
    namespace: str = "",
    subsystem: str = "",
    buckets: Sequence[float] = LATENCY_BUCKETS,
) -> LeanHistogram:
    """A histogram registered on ``registry``; ``buckets`` default to :data:`LATENCY_BUCKETS`."""
    return LeanHistogram(
        registry,
        name,
        documentation,
        labelnames,
        namespace=namespace,
        subsystem=subsystem,
        buckets=buckets,
    )


def request_metrics(
    registry: CollectorRegistry,
    *,
    namespace: str = "kitpy",
    subsystem: str = "server",
    buckets: Sequence[float] = LATENCY_BUCKETS,
) -> tuple[LeanCounter, LeanHistogram]:
    """The pair :func:`~kitpy.metrics.call_metrics` takes, labelled method and code.

    With the defaults: ``kitpy_server_requests_total`` and
    ``kitpy_server_request_duration_seconds``; use ``subsystem="client"`` for
    the client side.
    """
    requests = counter(
        registry,
        "requests",
        "Endpoint calls by method and outcome code.",
        ("method", "code"),
        namespace=namespace,
        subsystem=subsystem,
    )
    latency = histogram(
        registry,
        "request_duration_seconds",
        "Endpoint call duration in seconds by method and outcome code.",
        ("method", "code"),
        namespace=namespace,
        subsystem=subsystem,
        buckets=buckets,
    )
    return requests, latency


def stream_instruments(
    registry: CollectorRegistry,
    *,
    namespace: str = "kitpy",
    subsystem: str = "server",
    buckets: Sequence[float] = STREAM_BUCKETS,
) -> tuple[LeanCounter, LeanHistogram, LeanCounter]:
    """The three instruments :func:`~kitpy.metrics.stream_metrics` takes.

    With the defaults: ``kitpy_server_streams_total`` (labels method, code),
    ``kitpy_server_stream_duration_seconds`` (method, code; buckets
    :data:`STREAM_BUCKETS`, up to an hour) and
    ``kitpy_server_stream_messages_total`` (method, direction).
    """
    streams = counter(
        registry,
        "streams",
        "Streams by method and outcome code.",
        ("method", "code"),
        namespace=namespace,
        subsystem=subsystem,
    )
    duration = histogram(
        registry,
        "stream_duration_seconds",
        "Stream duration in seconds by method and outcome code.",
        ("method", "code"),
        namespace=namespace,
        subsystem=subsystem,
        buckets=buckets,
    )
    messages = counter(
        registry,
        "stream_messages",
        "Stream messages by method and direction (received, sent).",
        ("method", "direction"),
        namespace=namespace,
        subsystem=subsystem,
    )
    return streams, duration, messages


def metrics_handler(registry: CollectorRegistry) -> Handler:
    """An aiohttp handler serving ``registry`` in the Prometheus text format.

    It is prometheus-client's own ``make_aiohttp_handler`` (content negotiation,
    OpenMetrics, ``name[]`` filters), bound to ``registry``; needs ``kitpy[http]``.

    Example::

        app.router.add_get("/metrics", metrics_handler(registry))
    """
    require("aiohttp", extra="http")
    from prometheus_client.aiohttp import make_aiohttp_handler

    return make_aiohttp_handler(registry)
