"""Static settings: defaults < TOML file < environment < flags, and every error names its source."""

from __future__ import annotations

import dataclasses
import enum
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from kitpy.config import Address, ConfigError, Duration, Secret, Size, load, settings_fields


class Level(enum.Enum):
    DEBUG = "debug"
    INFO = "info"


@dataclasses.dataclass(frozen=True)
class Log:
    level: Level = Level.INFO
    """Least severe level logged."""
    json: bool = True


@dataclasses.dataclass(frozen=True)
class Settings:
    """A demo service."""

    http_addr: Address = Address("127.0.0.1", 8080)
    """Where the HTTP server listens."""
    timeout: Duration = Duration(2.0)
    """How long a call may take."""
    max_body: Size = Size(2**20)
    rate_limit: float | None = None
    tags: list[str] = dataclasses.field(default_factory=list)
    token: Secret = Secret("")
    """Bearer token for the upstream."""
    log: Log = dataclasses.field(default_factory=Log)


class StructSettings(msgspec.Struct, frozen=True):
    port: int = 80
    """The port."""
    log: Log = msgspec.field(default_factory=lambda: Log(level=Level.DEBUG))


@dataclasses.dataclass(frozen=True)
class Required:
    name: str


@dataclasses.dataclass(frozen=True)
class Checked:
    """Settings that check themselves (a ratio, a pair of bounds)."""

    ratio: float = 1.0
    low: int = 0
    high: int = 10

    def __post_init__(self) -> None:
        if not 0 <= self.ratio <= 1:
            raise ValueError(f"ratio must be from 0 to 1, got {self.ratio}")
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")


def _load(
    argv: list[str] | None = None,
    env: dict[str, str] | None = None,
    *,
    config_file: Path | None = None,
) -> Settings:
    return load(
        Settings,
        prefix="APP",
        argv=argv or [],
        env=env or {},
        config_file=config_file,
        exit_on_error=False,
    )


def _error(
    argv: list[str] | None = None,
    env: dict[str, str] | None = None,
    *,
    config_file: Path | None = None,
) -> str:
    with pytest.raises(ConfigError) as info:
        _load(argv, env, config_file=config_file)
    return str(info.value)


def test_defaults_alone() -> None:
    assert _load() == Settings()


def test_every_source_spells_a_field_the_same_way_and_later_sources_win(tmp_path: Path) -> None:
    file = tmp_path / "settings.toml"
    file.write_text(
        'http_addr = "0.0.0.0:1"\ntimeout = "1s"\nmax_body = "1KiB"\n[log]\nlevel = "debug"\n'
    )
    env = {"APP_CONFIG": str(file), "APP_TIMEOUT": "500ms", "APP_HTTP_ADDR": "0.0.0.0:2"}
    settings = _load(["--http-addr", "0.0.0.0:3"], env)
    assert settings.http_addr == ("0.0.0.0", 3)  # flag > env > file
    assert settings.timeout == 0.5  # env > file
    assert settings.max_body == 1024  # file > default
    assert settings.log == Log(level=Level.DEBUG, json=True)  # nested: the rest keeps its default
    assert settings.rate_limit is None


def test_nested_lists_optionals_and_booleans_from_env_and_flags() -> None:
    env = {"APP_LOG__JSON": "false", "APP_TAGS": "a,b", "APP_RATE_LIMIT": "5"}
    settings = _load(["--log.level", "debug", "--no-log.json"], env)
    assert settings.log == Log(level=Level.DEBUG, json=False)
    assert settings.tags == ["a", "b"]
    assert settings.rate_limit == 5.0
    assert _load(["--log.json"], env).log.json is True


def test_config_flag_and_explicit_file(tmp_path: Path) -> None:
    file = tmp_path / "s.toml"
    file.write_text("tags = ['x', 'y']\nrate_limit = 2\n")
    assert _load(["--config", str(file)]).tags == ["x", "y"]
    assert _load(config_file=file).rate_limit == 2.0


def test_msgspec_struct_settings_and_a_nested_default_factory() -> None:
    settings = load(StructSettings, prefix="S", argv=["--port", "81"], env={"S_LOG__JSON": "no"})
    assert settings.port == 81
    assert settings.log == Log(level=Level.DEBUG, json=False)  # the factory's level stays


def test_a_bad_file_value_names_the_file_line_and_field(tmp_path: Path) -> None:
    file = tmp_path / "settings.toml"
    file.write_text('# demo\ntimeout = "1s"\n\n[log]\nlevel = "loud"\n')
    message = _error(config_file=file)
    assert message.startswith(f"{file} line 5: log.level: expected one of debug, info, got 'loud'")


def test_a_bad_variable_and_a_bad_flag_name_themselves() -> None:
    assert _error(env={"APP_TIMEOUT": "soon"}) == (
        "environment variable APP_TIMEOUT: timeout: expected a duration such as 500ms, 2s, 1m "
        "or 1h30m, got 'soon'"
    )
    assert _error(["--http-addr", "nowhere"]).startswith(
        "flag --http-addr: http_addr: expected host:port"
    )


def test_unknown_keys_and_variables_are_errors_with_a_suggestion(tmp_path: Path) -> None:
    file = tmp_path / "settings.toml"
    file.write_text("timeout = 1\nhttp_adr = '0.0.0.0:1'\n")
    assert _error(config_file=file) == (
        f"{file} line 2: unknown setting 'http_adr' (did you mean http_addr?)"
    )
    assert _error(env={"APP_TIMOUT": "1s"}) == (
        "environment variable APP_TIMOUT: no setting is called that (did you mean APP_TIMEOUT?)"
    )
    file.write_text("[log]\ncolour = true\n")
    assert "line 2: unknown setting 'log.colour'" in _error(config_file=file)


def test_a_file_that_is_missing_or_not_toml(tmp_path: Path) -> None:
    assert "cannot read the settings file" in _error(config_file=tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("timeout = \n")
    assert _error(config_file=bad).startswith(f"{bad}: not valid TOML: ")


def test_secrets_from_values_and_files_never_shown(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("from-file\n")
    assert _load(env={"APP_TOKEN_FILE": str(secret)}).token.reveal() == "from-file"
    assert _load(["--token-file", str(secret)]).token.reveal() == "from-file"
    file = tmp_path / "s.toml"
    file.write_text(f"token_file = '{secret}'\n")
    assert _load(config_file=file).token.reveal() == "from-file"
    settings = _load(env={"APP_TOKEN": "hunter2"})
    assert settings.token.reveal() == "hunter2"
    assert "hunter2" not in repr(settings)
    assert "cannot read the secret file" in _error(env={"APP_TOKEN_FILE": str(tmp_path / "no")})


def test_a_required_field_says_how_to_set_it() -> None:
    with pytest.raises(ConfigError, match="name is required \\(set --name\\)"):
        load(Required, prefix="R", argv=[], env={}, exit_on_error=False)
    assert load(Required, prefix="R", argv=[], env={"R_NAME": "x"}) == Required("x")


def test_settings_fields_lists_the_three_spellings() -> None:
    fields = {s.key: (s.env("APP"), s.flag, s.help) for s in settings_fields(Settings)}
    assert fields["http_addr"] == ("APP_HTTP_ADDR", "--http-addr", "Where the HTTP server listens.")
    assert fields["log.level"] == ("APP_LOG__LEVEL", "--log.level", "Least severe level logged.")


SCRIPT = """
import sys
from tests.config.test_load import Settings
from kitpy.config import load
print(load(Settings, prefix="APP", prog="demo"))
"""


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *args],
        capture_output=True, text=True, timeout=60, cwd=root, env={"PATH": "", **(env or {})},
    )  # fmt: skip


def test_a_failed_post_init_check_names_where_its_field_was_set(tmp_path: Path) -> None:
    def error(argv: list[str], env: dict[str, str], file: Path | None = None) -> str:
        with pytest.raises(ConfigError) as info:
            load(Checked, prefix="APP", argv=argv, env=env, config_file=file, exit_on_error=False)
        return str(info.value)

    assert error(["--ratio", "2"], {}) == "flag --ratio: ratio must be from 0 to 1, got 2.0"
    assert error([], {"APP_RATIO": "-1"}) == (
        "environment variable APP_RATIO: ratio must be from 0 to 1, got -1.0"
    )
    file = tmp_path / "app.toml"
    file.write_text("ratio = 3\n")
    assert error([], {}, file) == f"{file}: ratio must be from 0 to 1, got 3.0"
    # Two fields named: no one source to blame, so the class is named instead.
    assert error(["--low", "5", "--high", "1"], {}) == (
        "settings: Checked: low (5) must not exceed high (1)"
    )
    assert load(Checked, prefix="APP", argv=["--ratio", "0.5"], env={}).ratio == 0.5


def test_a_failed_post_init_check_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        load(Checked, prefix="APP", prog="demo", argv=[], env={"APP_RATIO": "7"})
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "demo: error: environment variable APP_RATIO: ratio must be from 0 to 1, got 7.0"
    ]


def test_a_bad_value_exits_2_with_one_line() -> None:
    result = _run("--timeout", "never")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "demo: error: flag --timeout: timeout: expected a duration such as 500ms, 2s, 1m or "
        "1h30m, got 'never'"
    ]


def test_help_lists_every_setting_with_its_variable_default_and_doc() -> None:
    result = _run("--help", env={"APP_TOKEN": "hunter2"})
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "A demo service." in text
    http_addr = "Where the HTTP server listens. (env APP_HTTP_ADDR; default: 127.0.0.1:8080)"
    assert f"--http-addr ADDRESS {http_addr}" in text
    assert "(env APP_MAX_BODY; default: 1MiB)" in text
    assert "default: true" in text
    assert "--timeout DURATION How long a call may take. (env APP_TIMEOUT; default: 2s)" in text
    assert "--log.level DEBUG|INFO" in text
    assert "--log.json, --no-log.json" in text
    assert "--token-file PATH" in text
    assert "default: ***" in text
    assert "hunter2" not in text
