"""kitpy.metrics exports exactly its public names and needs no third-party package."""

from __future__ import annotations

import json
import subprocess
import sys

import kitpy.metrics
import kitpy.metrics.prometheus


def test_public_names() -> None:
    assert set(kitpy.metrics.__all__) == {
        "Counter", "Gauge", "Histogram", "call_metrics", "server_error_metrics", "stream_metrics",
    }  # fmt: skip
    assert set(kitpy.metrics.prometheus.__all__) == {
        "LATENCY_BUCKETS", "STREAM_BUCKETS", "CollectorRegistry", "LeanCounter", "LeanHistogram",
        "counter", "gauge", "histogram", "metrics_handler", "request_metrics", "stream_instruments",
    }  # fmt: skip
    for name in kitpy.metrics.__all__:
        assert hasattr(kitpy.metrics, name)


def test_core_metrics_and_memory_import_no_third_party_package() -> None:
    probe = (
        "import json, sys\n"
        "import kitpy.metrics, kitpy.metrics.memory\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    loaded = set(json.loads(out))
    assert "kitpy" in loaded
    assert not {"prometheus_client", "aiohttp", "structlog", "opentelemetry"} & loaded
