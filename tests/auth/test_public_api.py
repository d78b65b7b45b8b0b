"""The auth packages export what we say, and ``kitpy.auth`` itself needs no third-party package."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
before = set(sys.modules)
import {module}
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def imported_by(module: str) -> set[str]:
    """Top-level packages that importing ``module`` loads, in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    return {m.split(".")[0] for m in json.loads(out)}


def test_jwt_core_imports_no_transport() -> None:
    assert imported_by("kitpy.auth.jwt").isdisjoint({"aiohttp", "grpc", "multidict", "yarl"})


def test_kitpy_auth_imports_no_third_party_package() -> None:
    foreign = {m for m in imported_by("kitpy.auth") if m not in sys.stdlib_module_names}
    assert foreign == {"kitpy"}
