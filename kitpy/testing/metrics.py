"""In-memory request metrics with assertion helpers, for testing instrumented endpoints.

:class:`RequestMetrics` is the counter + histogram pair that
:func:`kitpy.metrics.call_metrics` takes, kept in memory, with
helpers to read and assert what was recorded; :class:`StreamMetrics` is the
same for the three instruments of :func:`kitpy.metrics.stream_metrics`.
"""

from __future__ import annotations

from kitpy.metrics.memory import MemoryCounter, MemoryGauge, MemoryHistogram

__all__ = ["MemoryCounter", "MemoryGauge", "MemoryHistogram", "RequestMetrics", "StreamMetrics"]


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


class StreamMetrics:
    """The ``streams``, ``duration`` and ``messages`` instruments of ``stream_metrics``, in memory.

    Example::

        metrics = StreamMetrics()
        endpoint = stream_metrics(metrics.streams, metrics.duration, metrics.messages)(endpoint)
        assert await collect(endpoint(Context(), messages("a b"))) == ["A", "B"]
        metrics.assert_stream(method="tokens", code="OK", received=1, sent=2)
    """

    def __init__(self) -> None:
        self.streams = MemoryCounter("streams_total", labelnames=("method", "code"))
        self.duration = MemoryHistogram("stream_duration_seconds", labelnames=("method", "code"))
        self.messages = MemoryCounter("stream_messages_total", labelnames=("method", "direction"))

    def count(self, *, method: str, code: str = "OK") -> float:
        """How many streams of ``method`` ended with ``code``."""
        return self.streams.value(method=method, code=code)

    def durations(self, *, method: str, code: str = "OK") -> list[float]:
        """The observed durations (seconds) of ``method`` streams that ended with ``code``."""
        return self.duration.observations(method=method, code=code)

    def received(self, *, method: str) -> float:
        """How many requests the ``method`` streams read, over all of them."""
        return self.messages.value(method=method, direction="received")

    def sent(self, *, method: str) -> float:
        """How many responses the ``method`` streams yielded, over all of them."""
        return self.messages.value(method=method, direction="sent")

    def counts(self) -> dict[tuple[str, str], float]:
        """Every ``(method, code)`` seen so far and its stream count."""
        children = self.streams.children()
        return {(labels["method"], labels["code"]): c.count for labels, c in children}

    def assert_stream(
        self,
        *,
        method: str,
        code: str = "OK",
        streams: float = 1,
        received: float | None = None,
        sent: float | None = None,
    ) -> None:
        """Assert ``streams`` streams of ``method`` ended with ``code`` (and each had a duration).

        ``received`` and ``sent``, when given, are checked against the message
        counts of ``method`` over all its streams.
        """
        got = self.count(method=method, code=code)
        observed = len(self.durations(method=method, code=code))
        problems = []
        if got != streams or observed != streams:
            problems.append(f"expected {streams} streams, counted {got}, durations {observed}")
        if received is not None and self.received(method=method) != received:
            problems.append(f"expected {received} received, got {self.received(method=method)}")
        if sent is not None and self.sent(method=method) != sent:
            problems.append(f"expected {sent} sent, got {self.sent(method=method)}")
        if problems:
            raise AssertionError(
                f"{method}/{code}: {'; '.join(problems)}; all counts: {self.counts()}"
            )
