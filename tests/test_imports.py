"""The core imports no third-party package (the public names are in test_public_api.py)."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
before = set(sys.modules)
import kitpy, kitpy.endpoint, kitpy.context, kitpy.errors
after = set(sys.modules) - before
print(json.dumps(sorted(after)))
"""


def test_importing_kitpy_pulls_in_no_third_party_package() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    new_modules = json.loads(out)
    assert "kitpy" in new_modules
    stdlib = sys.stdlib_module_names
    foreign = {
        m for m in new_modules if m.split(".")[0] not in stdlib and m.split(".")[0] != "kitpy"
    }
    assert foreign == set(), f"third-party modules imported by the core: {sorted(foreign)}"
