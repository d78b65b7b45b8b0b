"""stringsvc's settings (kitpy.config) and its live rate limit and log level, without a network."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kitpy import Context, Endpoint, RateLimited
from kitpy.config import Address, Secret, load, settings_fields
from kitpy.testing import CapturedLogs

from ..config import Settings
from ..live import LiveSettings, rate_limiter

ROOT = Path(__file__).resolve().parents[3]
PROG = "python -m examples.stringsvc"


def settings(argv: list[str], env: dict[str, str] | None = None) -> Settings:
    return load(Settings, prefix="STRINGSVC", prog=PROG, argv=argv, env=env or {})


def test_defaults() -> None:
    config = settings([])
    assert config == Settings()
    assert config.http_addr == Address("127.0.0.1", 8080)
    assert (config.http_addr.host, config.http_addr.port) == ("127.0.0.1", 8080)
    assert (config.rate_limit, config.log_level, config.config_etcd) == (None, "info", None)
    assert (config.grpc_reflection, config.print_spans) == (True, False)


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    file = tmp_path / "stringsvc.toml"
    file.write_text(
        'http_addr = "0.0.0.0:7000"\nrate_limit = 5\nshutdown_grace = "2s"\nlog_level = "debug"\n'
    )
    env = {"STRINGSVC_CONFIG": str(file)}
    from_file = settings([], env)
    assert (from_file.http_addr, from_file.rate_limit) == (Address("0.0.0.0", 7000), 5.0)
    assert (from_file.shutdown_grace, from_file.log_level) == (2.0, "debug")

    env |= {"STRINGSVC_HTTP_ADDR": "0.0.0.0:9000", "STRINGSVC_SHUTDOWN_GRACE": "2500ms"}
    from_env = settings([], env)
    assert (from_env.http_addr.port, from_env.shutdown_grace) == (9000, 2.5)
    assert from_env.rate_limit == 5.0  # still the file's

    from_flags = settings(["--http-addr", "[::1]:7", "--rate-limit", "none"], env)
    assert from_flags.http_addr == Address("::1", 7)
    assert from_flags.rate_limit is None  # a flag can unset what the file set
    assert settings(["--config", str(file)]).rate_limit == 5.0


def test_booleans_are_flag_pairs_and_true_false_elsewhere() -> None:
    assert settings(["--print-spans", "--no-grpc-reflection"]).print_spans
    assert not settings(["--no-grpc-reflection"]).grpc_reflection
    env = {"STRINGSVC_PRINT_SPANS": "true", "STRINGSVC_GRPC_REFLECTION": "false"}
    assert (settings([], env).print_spans, settings([], env).grpc_reflection) == (True, False)
    assert not settings(["--no-print-spans"], env).print_spans  # the flag wins


def test_the_jwt_secret_is_a_secret_and_can_come_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("from-a-file\n")
    config = settings(["--jwt-secret-file", str(tmp_path / "secret")])
    assert config.jwt_secret == Secret("from-a-file")
    assert "from-a-file" not in repr(config)
    assert settings([], {"STRINGSVC_JWT_SECRET": "s"}).jwt_secret == Secret("s")


@pytest.mark.parametrize(
    ("argv", "env", "starts"),
    [
        (["--http-addr", "nohost"], {}, "flag --http-addr: http_addr: expected host:port"),
        (["--http-addr", "h:99999"], {}, "flag --http-addr: http_addr: expected host:port"),
        (["--shutdown-grace", "-1"], {}, "flag --shutdown-grace: shutdown_grace: expected"),
        ([], {"STRINGSVC_RATE_LIMIT": "fast"}, "environment variable STRINGSVC_RATE_LIMIT: "),
        (["--rate-limit", "0"], {}, "flag --rate-limit: rate_limit must be > 0, got 0.0"),
        ([], {"STRINGSVC_LOG_LEVEL": "loud"}, "environment variable STRINGSVC_LOG_LEVEL: "),
        (["--trace-sample-ratio", "2"], {}, "flag --trace-sample-ratio: trace_sample_ratio must"),
        (["--max-in-flight", "0"], {}, "flag --max-in-flight: max_in_flight must be >= 1, got 0"),
        ([], {"STRINGSVC_MAX_WAITING": "-1"}, "environment variable STRINGSVC_MAX_WAITING: "),
        (["--proxy-qps", "0"], {}, "flag --proxy-qps: proxy_qps must be > 0"),
        (["--register", "http://h:1"], {}, "flag --register: register must be etcd://HOST:PORT"),
        (["--proxy", "static://a:1,b"], {}, "flag --proxy: proxy must be etcd://HOST:PORT or "),
        (["--config-etcd", "ftp://h:1"], {}, "flag --config-etcd: config_etcd must be http://"),
        ([], {"STRINGSVC_RATE_LIMT": "5"}, "environment variable STRINGSVC_RATE_LIMT: no setting"),
    ],
)
def test_a_bad_value_exits_2_with_one_line_naming_its_source(
    argv: list[str], env: dict[str, str], starts: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        settings(argv, env)
    assert info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{PROG}: error: {starts}"), lines[0]


def test_good_urls_pass() -> None:
    config = settings(
        ["--proxy", "static://127.0.0.1:1,[::1]:2", "--register", "etcd://127.0.0.1:2379"]
    )
    assert config.proxy == "static://127.0.0.1:1,[::1]:2"
    assert settings(["--config-etcd", "http://127.0.0.1:2379"]).config_etcd is not None
    assert settings(["--config-etcd", "etcd://127.0.0.1:2379"]).config_etcd is not None


def test_help_documents_every_setting() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "examples.stringsvc", "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    for setting in settings_fields(Settings):
        assert setting.flag in out, setting.flag
        assert setting.env("STRINGSVC") in out, setting.key
        assert setting.help, f"{setting.key} has no docstring"
    assert "--no-print-spans" in out
    assert "--config PATH" in out


async def _calls(endpoint: Endpoint[str, str], n: int) -> list[str]:
    """Call ``endpoint`` ``n`` times in a row: 'ok' or 'limited' for each."""
    out = []
    for _ in range(n):
        try:
            await endpoint(Context(), "x")
            out.append("ok")
        except RateLimited:
            out.append("limited")
    return out


async def _echo(ctx: Context, request: str) -> str:
    return request


async def test_no_rate_limit_adds_no_middleware_and_a_rate_has_its_burst() -> None:
    assert rate_limiter(None) == ()
    (limit,) = rate_limiter(5.0)
    assert await _calls(limit(_echo), 6) == ["ok"] * 5 + ["limited"]
    (limit,) = rate_limiter(2.5)  # the burst is the rate rounded up
    assert await _calls(limit(_echo), 4) == ["ok"] * 3 + ["limited"]


async def test_a_live_rate_limit_switches_between_unlimited_and_limited() -> None:
    live = LiveSettings(settings([]))
    (limit,) = rate_limiter(live.rate_limit)
    endpoint = limit(_echo)
    assert await _calls(endpoint, 20) == ["ok"] * 20  # unset: unlimited
    assert live.rate_limit.set("5")
    assert await _calls(endpoint, 6) == ["ok"] * 5 + ["limited"]  # starts full: a burst of 5
    assert not live.rate_limit.set("banana")
    assert not live.rate_limit.set("0")
    assert live.rate_limit.value == 5.0
    live.rate_limit.reset()
    assert await _calls(endpoint, 20) == ["ok"] * 20


def test_live_changes_and_rejections_are_logged_on_the_service_logger() -> None:
    live = LiveSettings(settings(["--rate-limit", "10"]))
    logs = CapturedLogs()
    live.log_to(logs.logger)
    live.rate_limit.set("banana", source="etcd key /config/stringsvc/rate_limit")
    rejected = logs.assert_logged_once("live setting rejected", setting="rate_limit")
    assert (rejected["log_level"], rejected["value"]) == ("error", "banana")
    assert rejected["source"] == "etcd key /config/stringsvc/rate_limit"
    assert live.log_level.set("debug")
    logs.assert_logged_once("live setting changed", setting="log_level", value="debug")
    assert not live.log_level.set("loud")
    logs.assert_logged_once("live setting rejected", setting="log_level", value="loud")
    live.problem("etcd prefix /config/stringsvc/: connection refused")
    logs.assert_logged_once("live settings problem")
