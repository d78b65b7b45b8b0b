"""The docs cannot rot: every ```python block in docs/*.md runs here.

Each page's blocks run in order, in one fresh module namespace, with
top-level ``await`` allowed (as in ``python -m asyncio``), inside the test's
event loop and bounded by a timeout.  Blocks that need a server start it on
127.0.0.1 port 0 themselves.  Fences other than ``python`` (``sh``, ``text``,
``py`` for fragments) are not run.  The lead's ``decisions.md`` has no runnable
examples and is skipped.  A page whose examples need a server binary says so in
a comment, ``<!-- needs: nats-server (Debian package nats-server) -->``: the
test finds the binary (skipping, or failing under KITPY_REQUIRE_SERVERS=1, as
the server fixtures do) and the page reads its path from ``NEEDS[name]``.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
import sys
import types
from pathlib import Path

import pytest

from tests.servers import require_binary

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
NOT_RUN = {"decisions.md"}
FENCE = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)
NEEDS = re.compile(r"<!-- needs: (\S+) \(Debian package (\S+)\) -->")
CONCEPT_PAGES = [
    "endpoints.md", "context.md", "errors.md", "http.md", "grpc.md", "logging.md",
    "metrics.md", "tracing.md", "auth.md", "circuitbreaker.md", "ratelimit.md",
    "resilience.md", "sd.md", "testing.md", "template.md", "config.md",
]  # fmt: skip
PAGES = sorted(p.name for p in DOCS.glob("*.md") if p.name not in NOT_RUN)


def python_blocks(page: Path) -> list[tuple[int, str]]:
    """``(first line number, source)`` of each ```python block of ``page``."""
    text = page.read_text()
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in FENCE.finditer(text)]


def test_every_concept_has_a_page_with_runnable_examples_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    for name in CONCEPT_PAGES:
        assert (DOCS / name).is_file(), name
        assert python_blocks(DOCS / name), f"{name} has no ```python example"
        assert f": {name}" in nav, f"{name} is not in mkdocs.yml's nav"


@pytest.mark.parametrize("name", PAGES)
async def test_page_examples_run(name: str) -> None:
    page = DOCS / name
    module = types.ModuleType(f"docs_{page.stem}")
    module.__file__ = str(page)
    needs = NEEDS.findall(page.read_text())
    module.__dict__["NEEDS"] = {
        binary: require_binary(binary, package, "/usr/sbin") for binary, package in needs
    }
    sys.modules[module.__name__] = module  # dataclasses and msgspec look classes up here
    try:
        for line, source in python_blocks(page):
            # Pad with blank lines so tracebacks point at the line in the .md file.
            code = compile(
                "\n" * (line - 1) + source, str(page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
            )
            result = eval(code, module.__dict__)
            if inspect.iscoroutine(result):
                async with asyncio.timeout(30):
                    await result
    finally:
        del sys.modules[module.__name__]
