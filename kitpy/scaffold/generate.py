"""Render the service template into a new folder, never touching existing files.

Rendering is plain text substitution of three spellings of the placeholder
name -- ``svcname`` (package), ``Svcname`` (gRPC service) and ``SVCNAME``
(environment variables) -- plus ``KITPY_VERSION`` and ``KITPY_REQUIREMENT``:
the pip requirement that installs the kitpy doing the generating (see
:func:`kitpy_requirement`), so a service generated from a checkout installs
that checkout.  File names ending in
``.tmpl`` lose the suffix (they are not Python, or would confuse tools while
inside kitpy), and ``gitignore`` becomes ``.gitignore``.  The protobuf modules
are generated with ``grpc_tools`` when it is installed; otherwise the
project's ``make run`` / ``make test`` generate them first.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import keyword
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from kitpy import __version__

__all__ = [
    "ScaffoldError",
    "Scaffolded",
    "generate",
    "kitpy_requirement",
    "render_names",
    "validate_name",
]

PLACEHOLDER = "svcname"
EXTRAS = "http,grpc,prometheus,otel,log,nats"
"""The kitpy extras a generated service installs."""
MAX_NAME_LENGTH = 24
"""Longer names could push template lines past the 100-column lint limit."""
_SKIP = frozenset({"ruff.toml", "__pycache__"})  # kitpy-side files, never copied
_NAME_RE = re.compile(r"[a-z][a-z0-9_]*\Z")
# Package names a generated service must not take: they would shadow what it imports.
_RESERVED = frozenset(
    {
        "kitpy", "aiohttp", "grpc", "grpc_tools", "grpc_health", "google", "msgspec",
        "structlog", "orjson", "opentelemetry", "prometheus_client", "multidict", "yarl",
        "pytest", "mypy", "ruff", "tests", "test", "pb",
    }
)  # fmt: skip


class ScaffoldError(Exception):
    """The project cannot be generated (bad name, folder exists, code generation failed)."""


@dataclass(frozen=True, slots=True)
class Scaffolded:
    """What :func:`generate` made: the project folder, its files, and whether pb code exists.

    ``kitpy`` is the requirement its Makefile installs kitpy with.
    """

    path: Path
    files: tuple[Path, ...]
    protobuf_generated: bool
    kitpy: str


def validate_name(name: str) -> None:
    """Raise :class:`ScaffoldError` unless ``name`` can be the service's package name.

    It must be a lower-case Python identifier (``[a-z][a-z0-9_]*``) of at most
    :data:`MAX_NAME_LENGTH` characters, not a keyword, and not the name of a
    standard-library module or of a package the service imports.
    """
    if not name.isidentifier():
        raise ScaffoldError(
            f"{name!r} is not a valid Python identifier; use lower-case letters, digits "
            "and underscores, starting with a letter (e.g. 'greeter' or 'order_svc')"
        )
    if keyword.iskeyword(name):
        raise ScaffoldError(f"{name!r} is a Python keyword; pick another name")
    if not _NAME_RE.match(name):
        suggestion = re.sub(r"^[^a-z]+", "", name.lower())
        hint = f" (e.g. {suggestion!r})" if _NAME_RE.match(suggestion) else ""
        raise ScaffoldError(
            f"{name!r} is not a package name: use lower-case letters, digits and "
            f"underscores, starting with a letter{hint}"
        )
    if len(name) > MAX_NAME_LENGTH:
        raise ScaffoldError(
            f"{name!r} is {len(name)} characters long; keep it to {MAX_NAME_LENGTH} or fewer"
        )
    if name in _RESERVED or name in sys.stdlib_module_names:
        raise ScaffoldError(
            f"{name!r} would shadow the module of the same name that the service imports; "
            "pick another name"
        )


def kitpy_source() -> str | None:
    """The ``file://`` URL this kitpy was installed from, or None if from a package index.

    A checkout (this package's parent folder holds kitpy's ``pyproject.toml``,
    as with ``pip install -e .``) gives that folder; a wheel or folder
    installed by path gives the URL pip recorded (``direct_url.json``).
    """
    root = Path(__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        with pyproject.open("rb") as file:
            if tomllib.load(file).get("project", {}).get("name") == "kitpy":
                return root.as_uri()
    try:
        recorded = importlib.metadata.distribution("kitpy").read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        return None
    url = json.loads(recorded).get("url", "") if recorded else ""
    return url if isinstance(url, str) and url.startswith("file://") else None


def kitpy_requirement() -> str:
    """The pip requirement that installs this kitpy with the extras a service needs.

    ``kitpy[...] @ file:///path/to/checkout`` when this kitpy came from a
    checkout or a local file, else ``kitpy[...]>=VERSION`` from the index.
    """
    source = kitpy_source()
    if source is None:
        return f"kitpy[{EXTRAS}]>={__version__}"
    return f"kitpy[{EXTRAS}] @ {source}"


def render_names(name: str) -> dict[str, str]:
    """The placeholders and what they become for ``name``, in the order they are replaced.

    The requirement goes last, so a path in it is never taken for a placeholder.
    """
    camel = "".join(part[:1].upper() + part[1:] for part in name.split("_"))
    return {
        "KITPY_VERSION": __version__,
        "SVCNAME": name.upper(),
        "Svcname": camel,
        PLACEHOLDER: name,
        "KITPY_REQUIREMENT": kitpy_requirement(),
    }


def _render(text: str, names: dict[str, str]) -> str:
    for placeholder, value in names.items():
        text = text.replace(placeholder, value)
    return text


def _target_name(source_name: str, names: dict[str, str]) -> str:
    name = _render(source_name, names)
    if name.endswith(".tmpl"):
        name = name.removesuffix(".tmpl")
    return ".gitignore" if name == "gitignore" else name


def _walk(folder: Traversable, relative: Path) -> list[tuple[Traversable, Path]]:
    found: list[tuple[Traversable, Path]] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name in _SKIP or entry.name.startswith(".") or entry.name.endswith(".pyc"):
            continue
        if entry.is_dir():
            found.extend(_walk(entry, relative / entry.name))
        else:
            found.append((entry, relative / entry.name))
    return found


def _generate_protobuf(project: Path, name: str) -> bool:
    """Run grpc_tools.protoc as the project's ``make proto`` does; False if it is missing."""
    if importlib.util.find_spec("grpc_tools") is None:
        return False
    command = [
        sys.executable, "-m", "grpc_tools.protoc", f"-I{name}/pb={name}",
        "--python_out=.", "--pyi_out=.", "--grpc_python_out=.", f"{name}/{name}.proto",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise ScaffoldError(f"protoc failed: {result.stderr.strip() or result.stdout.strip()}")
    return True


def generate(name: str, *, directory: Path | None = None, protobuf: bool = True) -> Scaffolded:
    """Create the service ``name`` in ``directory / name`` (default: the current folder).

    The project folder must not exist: nothing is ever overwritten.  If
    rendering fails part-way, the half-made folder (which this call created) is
    removed.  With ``protobuf`` (the default) the gRPC modules are generated
    when ``grpc_tools`` is installed.
    """
    validate_name(name)
    parent = Path.cwd() if directory is None else Path(directory)
    if parent.exists() and not parent.is_dir():
        raise ScaffoldError(f"{parent} is not a folder")
    project = parent / name
    if project.exists() or project.is_symlink():
        raise ScaffoldError(f"{project} already exists; refusing to overwrite it")
    parent.mkdir(parents=True, exist_ok=True)
    try:
        project.mkdir()  # atomic: fails if someone created it meanwhile
    except FileExistsError:
        raise ScaffoldError(f"{project} already exists; refusing to overwrite it") from None

    names = render_names(name)
    written: list[Path] = []
    try:
        template = resources.files(__package__ or "kitpy.scaffold") / "template"
        for source, relative in _walk(template, Path()):
            target = project.joinpath(*(_target_name(part, names) for part in relative.parts))
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("x", encoding="utf-8", newline="\n") as out:
                out.write(_render(source.read_text(encoding="utf-8"), names))
            written.append(target)
        generated = _generate_protobuf(project, name) if protobuf else False
    except BaseException:
        shutil.rmtree(project, ignore_errors=True)
        raise
    if generated:
        written.extend(sorted((project / name / "pb").glob(f"{name}_pb2*")))
    return Scaffolded(
        path=project,
        files=tuple(written),
        protobuf_generated=generated,
        kitpy=names["KITPY_REQUIREMENT"],
    )
