"""Typed settings from a file, the environment and flags; live settings that change at run time.

Static settings are a dataclass (or msgspec Struct) read by :func:`load`::

    @dataclass(frozen=True)
    class Settings:
        http_addr: Address = Address("127.0.0.1", 8080)
        \"\"\"Where the HTTP server listens.\"\"\"
        timeout: Duration = Duration(2.0)
        token: Secret = Secret("")

    settings = load(Settings, prefix="STRINGSVC")  # file < STRINGSVC_* < --flags

The core needs nothing beyond the standard library (TOML via ``tomllib``).
"""

from kitpy.config.convert import convert, describe
from kitpy.config.live import Live, Rejection, follow
from kitpy.config.load import ConfigError, Setting, load, settings_fields
from kitpy.config.types import URL, Address, Duration, Secret, Size

__all__ = [
    "URL",
    "Address",
    "ConfigError",
    "Live",
    "Rejection",
    "Duration",
    "Secret",
    "Setting",
    "Size",
    "convert",
    "describe",
    "follow",
    "load",
    "settings_fields",
]
