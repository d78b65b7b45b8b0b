"""Metrics for endpoints: small instrument protocols and the call-metrics middleware.

* :class:`Counter`, :class:`Gauge`, :class:`Histogram` -- what kitpy needs from
  a metrics library, with labels (``labels(**values)``).
* :func:`call_metrics` -- counts calls by method and outcome code
  and observes their latency in seconds.
* :func:`server_error_metrics` -- an ``error_handler`` counting the errors a
  Server's own steps raised, in the same counter.
* :func:`stream_metrics` -- for stream endpoints: streams by method and code,
  their durations, and their messages by method and direction.

Two implementations: ``kitpy.metrics.prometheus`` (prometheus-client, with a
``CollectorRegistry`` you pass in) and ``kitpy.metrics.memory`` (plain Python,
readable values, for tests).  This package itself imports no third-party code.
"""

from kitpy.metrics.instruments import Counter, Gauge, Histogram
from kitpy.metrics.middleware import call_metrics, server_error_metrics
from kitpy.metrics.stream import stream_metrics

__all__ = [
    "Counter",
    "Gauge",
    "Histogram",
    "call_metrics",
    "server_error_metrics",
    "stream_metrics",
]
