"""``kitpy new``: name checks, no overwriting, and a generated project that passes its own checks.

The generated project's ruff, mypy --strict and pytest run here with this
venv's tools (cwd = the project, PYTHONPATH = the project).  Its full
``make test`` in a fresh venv of its own is ``make scaffold-check``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kitpy.scaffold import (
    ScaffoldError,
    generate,
    kitpy_requirement,
    render_names,
    validate_name,
)
from kitpy.scaffold.cli import main

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PLACEHOLDERS = ("svcname", "Svcname", "SVCNAME", "KITPY_VERSION")


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_generated_project_passes_its_own_lint_typecheck_and_tests(tmp_path: Path) -> None:
    made = run([sys.executable, "-m", "kitpy", "new", "demo_svc", "--dir", str(tmp_path)], ROOT)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "demo_svc"
    assert f"Created demo_svc in {project}" in made.stdout

    files = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}
    for expected in (
        "Makefile", "pyproject.toml", "README.md", ".gitignore", "demo_svc/demo_svc.proto",
        "demo_svc/service.py", "demo_svc/endpoints.py", "demo_svc/transport_http.py",
        "demo_svc/transport_grpc.py", "demo_svc/observability.py", "demo_svc/config.py",
        "demo_svc/__main__.py", "demo_svc/pb/demo_svc_pb2.py", "demo_svc/pb/demo_svc_pb2_grpc.py",
        "demo_svc/tests/test_endpoints.py", "demo_svc/tests/test_config.py",
    ):  # fmt: skip
        assert expected in files
    assert not [f for f in files if f.endswith(".tmpl") or "ruff.toml" in f]
    for path in project.rglob("*"):
        if path.is_file() and "/pb/" not in path.as_posix():
            text = path.read_text()
            assert not [p for p in PLACEHOLDERS if p in text], path
    assert "service DemoSvc {" in (project / "demo_svc/demo_svc.proto").read_text()
    assert "DEMO_SVC_HTTP_ADDR" in (project / "demo_svc/config.py").read_text()
    assert 'prefix="DEMO_SVC",' in (project / "demo_svc/__main__.py").read_text()
    makefile = (project / "Makefile").read_text()
    assert "make run" in makefile
    assert "KITPY_SPEC ?= kitpy[" in makefile

    cache = ROOT / ".mypy_cache" / "scaffold"  # kept between runs: a warm cache saves ~8 s
    for command in (
        [str(BIN / "ruff"), "check", "--no-cache", "."],
        [str(BIN / "ruff"), "format", "--check", "--no-cache", "."],
        [sys.executable, "-m", "mypy", "--cache-dir", str(cache), "demo_svc"],
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
    ):
        result = run(command, project)
        assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    assert " passed" in result.stdout


def test_a_project_generated_from_a_checkout_installs_that_checkout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    requirement = f"kitpy[http,grpc,prometheus,otel,log,nats] @ {ROOT.as_uri()}"
    assert kitpy_requirement() == requirement  # this kitpy runs from the checkout
    assert main(["new", "greeter", "--dir", str(tmp_path)]) == 0
    project = tmp_path / "greeter"
    makefile = (project / "Makefile").read_text()
    assert f"KITPY_SPEC ?= {requirement}\n" in makefile
    assert '$(BIN)/pip install --quiet "$(KITPY_SPEC)"' in makefile
    out = capsys.readouterr().out.splitlines()
    assert f"Its Makefile installs kitpy as: {requirement}" in out
    assert out[-4:] == [
        "Next:",
        f"  cd {project}",
        "  make run     # create .venv, install, start it (HTTP :8080, gRPC :8081)",
        "  make test    # create .venv, install, then ruff, mypy --strict and the tests",
    ]
    readme = (project / "README.md").read_text()
    assert ".venv/bin/python -m greeter --help" in readme


@pytest.mark.parametrize("name", ["ab", "a_very_long_service_name1"[:24]])
def test_short_and_long_names_render_lint_clean(name: str, tmp_path: Path) -> None:
    project = generate(name, directory=tmp_path, protobuf=False).path
    for command in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        result = run([str(BIN / "ruff"), *command], project)
        assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("1svc", "not a valid Python identifier"),
        ("my-svc", "not a valid Python identifier"),
        ("class", "is a Python keyword"),
        ("MySvc", "e.g. 'mysvc'"),
        ("json", "would shadow"),
        ("kitpy", "would shadow"),
        ("x" * 25, "keep it to 24 or fewer"),
    ],
)
def test_bad_names_exit_2_with_a_clear_message(
    name: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["new", name, "--dir", str(tmp_path)])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_existing_folder_is_never_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit) as info:
        main(["new", "taken", "--dir", str(tmp_path)])
    assert info.value.code == 2
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["keep.txt"]
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["new"], ["frobnicate"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
    assert "usage: kitpy" in capsys.readouterr().err


def test_generate_without_protobuf_leaves_it_to_make(tmp_path: Path) -> None:
    made = generate("greeter", directory=tmp_path / "new" / "parent", protobuf=False)
    assert made.path == tmp_path / "new" / "parent" / "greeter"
    assert not made.protobuf_generated
    assert sorted(p.name for p in (made.path / "greeter" / "pb").iterdir()) == ["__init__.py"]
    assert all(p.is_file() for p in made.files)
    assert "$(PB): greeter/greeter.proto" in (made.path / "Makefile").read_text()


def test_generate_refuses_a_file_where_the_folder_would_go(tmp_path: Path) -> None:
    (tmp_path / "svc").write_text("x")
    with pytest.raises(ScaffoldError, match="already exists"):
        generate("svc", directory=tmp_path)
    assert (tmp_path / "svc").read_text() == "x"


def test_names_render_in_three_spellings() -> None:
    names = render_names("order_svc")
    assert (names["svcname"], names["Svcname"], names["SVCNAME"]) == (
        "order_svc", "OrderSvc", "ORDER_SVC",
    )  # fmt: skip
    validate_name("order_svc2")  # fine: no exception


def test_console_script_is_installed() -> None:
    script = shutil.which("kitpy", path=str(BIN))
    assert script is not None, "reinstall kitpy (pip install -e .) to get the `kitpy` script"
    result = subprocess.run(
        [script, "new", "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    assert "--dir PATH" in result.stdout
