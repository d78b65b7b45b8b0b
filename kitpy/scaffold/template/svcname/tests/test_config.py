"""The settings: defaults < TOML file < environment < flags, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from kitpy.config import Address, load

from ..config import Settings

PROG = "python -m svcname"


def settings(argv: list[str], env: dict[str, str] | None = None) -> Settings:
    return load(Settings, prefix="SVCNAME", prog=PROG, argv=argv, env=env or {})


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    assert settings([]) == Settings()
    file = tmp_path / "svcname.toml"
    file.write_text('http_addr = "0.0.0.0:7000"\nshutdown_grace = "2s"\n')
    env = {"SVCNAME_CONFIG": str(file)}
    assert settings([], env).http_addr == Address("0.0.0.0", 7000)
    assert settings([], env).shutdown_grace == 2.0
    env["SVCNAME_HTTP_ADDR"] = "0.0.0.0:9000"
    assert settings([], env).http_addr.port == 9000
    assert settings(["--http-addr", "127.0.0.1:1"], env).http_addr == Address("127.0.0.1", 1)
    assert not settings(["--no-grpc-reflection"], env).grpc_reflection
    assert settings([], {"SVCNAME_LOG_LEVEL": "debug"}).log_level == "debug"


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["--http-addr", "nohost"], {}),
        (["--log-format", "xml"], {}),
        ([], {"SVCNAME_SHUTDOWN_GRACE": "soon"}),
        ([], {"SVCNAME_HTTP_ADRR": "x"}),  # a typo is an error, not ignored
    ],
)
def test_a_bad_value_exits_2_with_one_line_naming_its_source(
    argv: list[str], env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        settings(argv, env)
    assert info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    source = f"flag {argv[0]}" if argv else f"environment variable {next(iter(env))}"
    assert lines[0].startswith(f"{PROG}: error: {source}: ")
