"""Every integration whose extra is missing names the extra to install.

Each case runs in a fresh interpreter where the extra's packages are hidden
(``sys.modules[name] = None`` is how Python marks a module as unimportable), so
the import fails exactly as it would on a machine without the extra.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# (kitpy module, packages to hide, the extra its error must name)
CASES = [
    ("kitpy.transport.http", ["aiohttp"], "http"),
    ("kitpy.transport.http", ["msgspec"], "http"),
    ("kitpy.transport.grpc", ["grpc"], "grpc"),
    ("kitpy.transport.grpc", ["google"], "grpc"),
    ("kitpy.transport.grpc", ["grpc_health"], "grpc"),
    ("kitpy.metrics.prometheus", ["prometheus_client"], "prometheus"),
    ("kitpy.tracing", ["opentelemetry"], "otel"),
    ("kitpy.auth.jwt", ["jwt"], "jwt"),
    ("kitpy.auth.jwt", ["cryptography"], "jwt"),
    ("kitpy.log", ["structlog"], "log"),
    ("kitpy.circuitbreaker.pybreaker_adapter", ["pybreaker"], "breaker"),
    ("kitpy.ratelimit.distributed", ["limits"], "redis"),
    ("kitpy.ratelimit.distributed", ["redis"], "redis"),
    ("kitpy.sd.etcd", ["aiohttp"], "etcd"),
    ("kitpy.sd.dnssrv", ["dns"], "dns"),
    ("kitpy.transport.nats", ["nats"], "nats"),
    ("kitpy.transport.amqp", ["aio_pika"], "amqp"),
    ("kitpy.lifecycle.http", ["aiohttp"], "http"),
    ("kitpy.lifecycle.grpc", ["grpc"], "grpc"),
    ("kitpy.lifecycle.nats", ["nats"], "nats"),
    ("kitpy.lifecycle.amqp", ["aio_pika"], "amqp"),
    ("kitpy.config.etcd", ["aiohttp"], "etcd"),
    ("kitpy.gateway", ["aiohttp"], "gateway"),
    ("kitpy.gateway", ["grpc"], "gateway"),
]

PROBE = """
import json, sys
for name in json.loads(sys.argv[1]):
    sys.modules[name] = None
try:
    __import__(sys.argv[2])
except ImportError as exc:
    print(json.dumps([type(exc).__name__, str(exc)]))
else:
    print(json.dumps(["imported", ""]))
"""


def _import_hiding(module: str, hidden: list[str]) -> tuple[str, str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(hidden), module],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    kind, message = json.loads(out)
    return kind, message


@pytest.mark.parametrize(("module", "hidden", "extra"), CASES)
def test_a_missing_extra_names_itself(module: str, hidden: list[str], extra: str) -> None:
    kind, message = _import_hiding(module, hidden)
    assert kind == "ImportError", f"{module} without {hidden}: {kind}: {message}"
    assert f'pip install "kitpy[{extra}]"' in message


@pytest.mark.parametrize(
    ("name", "hidden", "extra"),
    [("CapturedLogs", ["structlog"], "log"), ("SpanRecorder", ["opentelemetry"], "otel")],
)
def test_testing_helpers_name_their_extra_and_the_rest_needs_none(
    name: str, hidden: list[str], extra: str
) -> None:
    probe = f"import kitpy.testing as t; t.FakeClock; t.RequestMetrics; t.{name}"
    out = subprocess.run(
        [sys.executable, "-c", f"import sys\nfor n in {hidden!r}: sys.modules[n] = None\n{probe}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError:"), out.stderr
    assert f'pip install "kitpy[{extra}]"' in last


def test_the_core_needs_no_extra_at_all() -> None:
    hidden = sorted({p for _, packages, _ in CASES for p in packages})
    kind, message = _import_hiding("kitpy.endpoint", hidden)
    assert kind == "imported", message
