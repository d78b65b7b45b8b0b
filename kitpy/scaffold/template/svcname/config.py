"""svcname's configuration: flags with environment-variable defaults.

Each option is one field of :class:`Config` with its flag, environment variable
and help text; ``--help`` lists them all.  A flag beats the environment
variable, which beats the default.  To add an option, add one field::

    greeting: str = option("Hi", "--greeting", "SVCNAME_GREETING", "greeting word")
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
    default: Any, flag: str, env: str, help: str, *, parse: Callable[[str], Any] = str
) -> Any:
    """Declare a :class:`Config` field settable by ``flag`` and environment variable ``env``.

    ``parse`` turns the text into the value, raising ``ValueError`` with a helpful
    message when it cannot.
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


def parse_log_format(text: str) -> str:
    """``json`` or ``console``."""
    if text not in ("json", "console"):
        raise ValueError(f"{text!r} is not json or console")
    return text


def parse_bool(text: str) -> bool:
    """true/false, yes/no, on/off or 1/0."""
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"{text!r} is not true or false")


@dataclass(frozen=True, slots=True)
class Config:
    """Everything svcname can be told at start-up."""

    http_addr: str = option(
        "127.0.0.1:8080",
        "--http-addr",
        "SVCNAME_HTTP_ADDR",
        "HTTP listen address, host:port (port 0 picks a free port)",
        parse=parse_addr,
    )
    grpc_addr: str = option(
        "127.0.0.1:8081",
        "--grpc-addr",
        "SVCNAME_GRPC_ADDR",
        "gRPC listen address, host:port (port 0 picks a free port)",
        parse=parse_addr,
    )
    grpc_reflection: bool = option(
        True,
        "--grpc-reflection",
        "SVCNAME_GRPC_REFLECTION",
        "serve gRPC server reflection, so grpcurl can list the service (true/false)",
        parse=parse_bool,
    )
    log_format: str = option(
        "json",
        "--log-format",
        "SVCNAME_LOG_FORMAT",
        "log line format: json or console",
        parse=parse_log_format,
    )
    shutdown_grace: float = option(
        10.0,
        "--shutdown-grace",
        "SVCNAME_SHUTDOWN_GRACE",
        "seconds in-flight requests get to finish on shutdown",
        parse=parse_seconds,
    )
    shutdown_drain: float = option(
        0.5,
        "--shutdown-drain",
        "SVCNAME_SHUTDOWN_DRAIN",
        "seconds between reporting NOT_SERVING and refusing new requests",
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
        prog="python -m svcname",
        description="Run svcname. Every flag can also be set by the "
        "environment variable named in its help.",
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
