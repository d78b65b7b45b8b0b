"""mypy --strict accepts typical kitpy user code and rejects the classic mistakes.

``user_code.py`` must type-check cleanly; every line of ``mistakes.py`` marked
``# E: <code>`` must get a mypy error with that code, and no unmarked line may.
One mypy run (in a subprocess, with the project's configuration) checks both.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
GOOD = HERE / "user_code.py"
BAD = HERE / "mistakes.py"
ERROR = re.compile(
    r"^(?P<path>[^:]+):(?P<line>\d+): error: (?P<message>.*?)\s+\[(?P<code>[a-z-]+)\]$"
)
MARKER = re.compile(r"#\s*E:\s*(?P<code>[a-z-]+)")


def expected_errors() -> set[tuple[int, str]]:
    found = set()
    for number, line in enumerate(BAD.read_text().splitlines(), start=1):
        match = MARKER.search(line)
        if match:
            found.add((number, match["code"]))
    return found


def test_user_code_passes_and_mistakes_fail_where_marked() -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "mypy", "--show-error-codes", "--no-error-summary",
            "--no-pretty", "--hide-error-context", str(GOOD.relative_to(ROOT)),
            str(BAD.relative_to(ROOT)),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    errors: dict[str, set[tuple[int, str]]] = {GOOD.name: set(), BAD.name: set()}
    for line in result.stdout.splitlines():
        match = ERROR.match(line)
        if match:
            errors[Path(match["path"]).name].add((int(match["line"]), match["code"]))
    assert result.returncode == 1, result.stdout + result.stderr  # 1: type errors, not a crash
    assert errors[GOOD.name] == set(), result.stdout
    expected = expected_errors()
    assert len(expected) >= 10
    assert errors[BAD.name] == expected, result.stdout
