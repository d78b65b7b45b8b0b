"""In-memory request metrics with assertion helpers, for testing instrumented endpoints.

:class:`RequestMetrics` is the counter + histogram pair that
:func:`kitpy.metrics.call_metrics` takes, kept in memory, with
helpers to read and assert what was recorded.
"""

from __future__ import annotations

from kitpy.metrics.memory import MemoryCounter, MemoryGauge, MemoryHistogram

__all__ = ["MemoryCounter", "MemoryGauge", "MemoryHistogram", "RequestMetrics"]


class RequestMetrics:
    """A ``requests`` counter and a ``latency`` histogram labelled ``method`` and ``code``.

    Example::

        metrics = RequestMetrics()
        endpoint = call_metrics(metrics.requests, metrics.latency)(endpoint)
        await endpoint(Context(), request)
        metrics.assert_count(1, method="uppercase", code="OK")
    """

    def __init__(self) -> None:
        self.requests = MemoryCounter("requests_total", labelnames=("method", "code"))
        self.latency = MemoryHistogram("request_duration_seconds", labelnames=("method", "code"))

    def count(self, *, method: str, code: str = "OK") -> float:
        """How many calls of ``method`` ended with ``code``."""
        return self.requests.value(method=method, code=code)

    def latencies(self, *, method: str, code: str = "OK") -> list[float]:
        """The observed durations (seconds) of ``method`` calls that ended with ``code``."""
        return self.latency.observations(method=method, code=code)

    def counts(self) -> dict[tuple[str, str], float]:
        """Every ``(method, code)`` seen so far and its count."""
        children = self.requests.children()
        return {(labels["method"], labels["code"]): c.count for labels, c in children}

    def assert_count(self, expected: float, *, method: str, code: str = "OK") -> None:
        """Assert the call count for ``method``/``code``, and that latency saw as many."""
        got = self.count(method=method, code=code)
        observed = len(self.latencies(method=method, code=code))
        if got != expected or observed != expected:
            raise AssertionError(
                f"{method}/{code}: expected {expected} calls, counted {got}, "
                f"latency observed {observed}; all counts: {self.counts()}"
            )
