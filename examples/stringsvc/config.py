"""stringsvc's configuration: flags with environment-variable defaults.

Each option is one field of :class:`Config` with its flag, environment
variable and help text; ``--help`` lists them all.  A flag beats the
environment variable, which beats the default.  To add an option (a gRPC
address, a log level, an OTLP endpoint, ...), add one field::

    grpc_addr: str = option("127.0.0.1:8081", "--grpc-addr", "STRINGSVC_GRPC_ADDR",
                            "gRPC listen address (host:port)", parse=parse_addr)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Config", "option", "parse_addr", "parse_config", "split_addr"]


def option(
    default: Any,
    flag: str,
    env: str,
    help: str,
    *,
    parse: Callable[[str], Any] = str,
) -> Any:
    """Declare a :class:`Config` field settable by ``flag`` and environment variable ``env``.

    ``parse`` turns the text of the flag or variable into the value (and raises
    ``ValueError`` with a helpful message when it cannot).
    """
    return dataclasses.field(
        default=default, metadata={"flag": flag, "env": env, "help": help, "parse": parse}
    )


def split_addr(addr: str) -> tuple[str, int]:
    """Split ``"host:port"`` into its parts; raise ValueError if it is not one."""
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{addr!r} is not host:port (port 0-65535)")
    return host.strip("[]"), int(port)


def parse_addr(addr: str) -> str:
    """Validate a ``host:port`` address and return it unchanged."""
    split_addr(addr)
    return addr


def parse_seconds(text: str) -> float:
    """A non-negative number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number of seconds") from None
    if not value >= 0:
        raise ValueError(f"{text!r} must be >= 0 seconds")
    return value


def parse_ratio(text: str) -> float:
    """A number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{text!r} must be between 0 and 1")
    return value


def parse_positive_float(text: str) -> float:
    """A number greater than 0."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not value > 0:
        raise ValueError(f"{text!r} must be > 0")
    return value


def parse_count(text: str) -> int:
    """A whole number >= 0."""
    if not text.strip().isdigit():
        raise ValueError(f"{text!r} is not a whole number >= 0")
    return int(text)


def parse_positive_int(text: str) -> int:
    """A whole number >= 1."""
    value = parse_count(text)
    if value < 1:
        raise ValueError(f"{text!r} must be >= 1")
    return value


def parse_bool(text: str) -> bool:
    """true/false, yes/no, on/off or 1/0."""
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"{text!r} is not true or false")


def parse_choice(*choices: str) -> Callable[[str], str]:
    """A parser accepting exactly one of ``choices``."""

    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"{text!r} is not one of {', '.join(choices)}")
        return text

    return parse


def parse_etcd_url(text: str) -> str:
    """``etcd://host:port``; returned unchanged."""
    scheme, sep, rest = text.partition("://")
    if scheme != "etcd" or not sep:
        raise ValueError(f"{text!r} is not etcd://HOST:PORT")
    split_addr(rest.rstrip("/"))
    return text


def parse_proxy_url(text: str) -> str:
    """``etcd://host:port`` or ``static://host:port[,host:port...]``; returned unchanged."""
    scheme, sep, rest = text.partition("://")
    if scheme == "etcd":
        return parse_etcd_url(text)
    if scheme != "static" or not sep or not rest:
        raise ValueError(f"{text!r} is not etcd://HOST:PORT or static://HOST:PORT,HOST:PORT")
    for addr in rest.split(","):
        split_addr(addr)
    return text


@dataclass(frozen=True, slots=True)
class Config:
    """Everything stringsvc can be told at start-up."""

    http_addr: str = option(
        "127.0.0.1:8080",
        "--http-addr",
        "STRINGSVC_HTTP_ADDR",
        "HTTP listen address, host:port (port 0 picks a free port)",
        parse=parse_addr,
    )
    grpc_addr: str = option(
        "127.0.0.1:8081",
        "--grpc-addr",
        "STRINGSVC_GRPC_ADDR",
        "gRPC listen address, host:port (port 0 picks a free port)",
        parse=parse_addr,
    )
    grpc_reflection: bool = option(
        True,
        "--grpc-reflection",
        "STRINGSVC_GRPC_REFLECTION",
        "serve gRPC server reflection, so grpcurl can list and describe the service (true/false)",
        parse=parse_bool,
    )
    shutdown_grace: float = option(
        10.0,
        "--shutdown-grace",
        "STRINGSVC_SHUTDOWN_GRACE",
        "seconds in-flight requests get to finish on shutdown",
        parse=parse_seconds,
    )
    shutdown_drain: float = option(
        0.5,
        "--shutdown-drain",
        "STRINGSVC_SHUTDOWN_DRAIN",
        "seconds between reporting NOT_SERVING (and deregistering) and refusing new requests",
        parse=parse_seconds,
    )
    log_format: str = option(
        "auto",
        "--log-format",
        "STRINGSVC_LOG_FORMAT",
        "log line format: json, console, or auto (console on a terminal, else json)",
        parse=parse_choice("auto", "json", "console"),
    )
    otlp_endpoint: str | None = option(
        None,
        "--otlp-endpoint",
        "STRINGSVC_OTLP_ENDPOINT",
        "send spans by OTLP/gRPC to this endpoint (e.g. http://127.0.0.1:4317) instead of "
        "printing them; needs opentelemetry-exporter-otlp-proto-grpc",
    )
    trace_sample_ratio: float = option(
        1.0,
        "--trace-sample-ratio",
        "STRINGSVC_TRACE_SAMPLE_RATIO",
        "fraction of new traces to record, 0..1 (a caller's sampling decision is kept)",
        parse=parse_ratio,
    )
    print_spans: bool = option(
        False,
        "--print-spans",
        "STRINGSVC_PRINT_SPANS",
        "print finished spans to stdout when no OTLP endpoint is set (true/false)",
        parse=parse_bool,
    )
    max_in_flight: int = option(
        256,
        "--max-in-flight",
        "STRINGSVC_MAX_IN_FLIGHT",
        "server-side concurrency limit; calls beyond it (and the queue) get 503",
        parse=parse_positive_int,
    )
    max_waiting: int = option(
        256,
        "--max-waiting",
        "STRINGSVC_MAX_WAITING",
        "calls that may wait for a free slot before new ones are shed",
        parse=parse_count,
    )
    jwt_secret: str | None = option(
        None,
        "--jwt-secret",
        "STRINGSVC_JWT_SECRET",
        "require an HS256 bearer token (audience 'stringsvc') signed with this secret "
        "(at least 32 bytes)",
    )
    jwks_url: str | None = option(
        None,
        "--jwks-url",
        "STRINGSVC_JWKS_URL",
        "require a bearer token (RS256/ES256/EdDSA, audience 'stringsvc') verified with the "
        "keys served at this JWKS URL",
    )
    nats: str | None = option(
        None,
        "--nats",
        "STRINGSVC_NATS",
        "also serve Uppercase and Count over NATS request-reply at this URL, e.g. "
        "nats://127.0.0.1:4222 (subjects stringsvc.uppercase, stringsvc.count)",
    )
    amqp: str | None = option(
        None,
        "--amqp",
        "STRINGSVC_AMQP",
        "also serve Uppercase and Count from RabbitMQ queues at this URL, e.g. "
        "amqp://guest:guest@127.0.0.1:5672/ (queues stringsvc.uppercase, stringsvc.count)",
    )
    register: str | None = option(
        None,
        "--register",
        "STRINGSVC_REGISTER",
        "register this instance in etcd, e.g. etcd://127.0.0.1:2379",
        parse=parse_etcd_url,
    )
    proxy: str | None = option(
        None,
        "--proxy",
        "STRINGSVC_PROXY",
        "serve Uppercase by calling other instances: etcd://HOST:PORT (live instances) or "
        "static://HOST:PORT,HOST:PORT (their HTTP addresses)",
        parse=parse_proxy_url,
    )
    proxy_transport: str = option(
        "http",
        "--proxy-transport",
        "STRINGSVC_PROXY_TRANSPORT",
        "how the proxy calls the other instances: http or grpc",
        parse=parse_choice("http", "grpc"),
    )
    sd_prefix: str = option(
        "/services/stringsvc/",
        "--sd-prefix",
        "STRINGSVC_SD_PREFIX",
        "etcd key prefix under which instances register",
    )
    proxy_qps: float = option(
        1000.0,
        "--proxy-qps",
        "STRINGSVC_PROXY_QPS",
        "rate limit for proxied calls (per second); excess calls get 429",
        parse=parse_positive_float,
    )
    proxy_burst: int = option(
        100,
        "--proxy-burst",
        "STRINGSVC_PROXY_BURST",
        "burst size of the proxy's rate limit",
        parse=parse_positive_int,
    )
    proxy_attempts: int = option(
        3,
        "--proxy-attempts",
        "STRINGSVC_PROXY_ATTEMPTS",
        "attempts per proxied call (each on a freshly picked instance), within the deadline "
        "and a retry budget",
        parse=parse_positive_int,
    )
    proxy_timeout: float = option(
        2.0,
        "--proxy-timeout",
        "STRINGSVC_PROXY_TIMEOUT",
        "deadline for a proxied call when the caller sent none (seconds)",
        parse=parse_seconds,
    )
    breaker_failures: int = option(
        5,
        "--breaker-failures",
        "STRINGSVC_BREAKER_FAILURES",
        "consecutive failures that open an upstream instance's circuit breaker",
        parse=parse_positive_int,
    )
    breaker_reset: float = option(
        5.0,
        "--breaker-reset",
        "STRINGSVC_BREAKER_RESET",
        "seconds an open breaker waits before letting a trial call through",
        parse=parse_seconds,
    )

    @property
    def http_host(self) -> str:
        return split_addr(self.http_addr)[0]

    @property
    def http_port(self) -> int:
        return split_addr(self.http_addr)[1]

    @property
    def grpc_host(self) -> str:
        return split_addr(self.grpc_addr)[0]

    @property
    def grpc_port(self) -> int:
        return split_addr(self.grpc_addr)[1]


def _parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m examples.stringsvc",
        description="Run stringsvc, the kitpy template service. "
        "Every flag can also be set by the environment variable named in its help.",
    )
    for f in dataclasses.fields(Config):
        meta = f.metadata
        parse: Callable[[str], Any] = meta["parse"]

        def convert(text: str, parse: Callable[[str], Any] = parse) -> Any:
            try:
                return parse(text)
            except ValueError as exc:  # argparse shows ArgumentTypeError's text as is
                raise argparse.ArgumentTypeError(str(exc)) from None

        convert.__name__ = f.name  # argparse names the option in its error message
        default = environ.get(meta["env"])
        parser.add_argument(
            meta["flag"],
            dest=f.name,
            type=convert,
            default=f.default if default is None else default,
            help=f"{meta['help']} (env {meta['env']}; default {f.default})",
        )
    return parser


def parse_config(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Build a :class:`Config` from ``argv`` (default: ``sys.argv``) and ``environ``.

    Invalid values exit with status 2 and a message naming the flag, as argparse does.
    """
    parser = _parser(os.environ if environ is None else environ)
    return Config(**vars(parser.parse_args(argv)))
