"""kitpy.lifecycle imports no third-party package; its adapters name their extra if missing."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence

import pytest

PROBE = """
import json, sys
for name in json.loads(sys.argv[1]):
    sys.modules[name] = None
before = set(sys.modules)
try:
    __import__(sys.argv[2])
except ImportError as exc:
    print(json.dumps(["ImportError", str(exc), []]))
else:
    print(json.dumps(["imported", "", sorted(set(sys.modules) - before)]))
"""


def probe(module: str, hidden: Sequence[str] = ()) -> tuple[str, str, list[str]]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(hidden)), module],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    kind, message, modules = json.loads(out)
    return kind, message, modules


def test_the_core_imports_no_third_party_package() -> None:
    kind, _, modules = probe("kitpy.lifecycle")
    assert kind == "imported"
    foreign = {m for m in modules if m.split(".")[0] not in {*sys.stdlib_module_names, "kitpy"}}
    assert foreign == set()


@pytest.mark.parametrize(
    ("module", "hidden", "extra"),
    [("kitpy.lifecycle.http", ["aiohttp"], "http"), ("kitpy.lifecycle.grpc", ["grpc"], "grpc")],
)
def test_an_adapter_without_its_extra_names_it(module: str, hidden: list[str], extra: str) -> None:
    kind, message, _ = probe(module, hidden)
    assert kind == "ImportError"
    assert f'pip install "kitpy[{extra}]"' in message
