"""Value types settings are made of: durations, sizes, addresses, URLs and secrets.

Each type parses the text people write in files, environment variables and
flags (``"500ms"``, ``"1MiB"``, ``"127.0.0.1:8080"``) and raises
``ValueError`` saying what was expected when it cannot.  They are plain values
afterwards: a :class:`Duration` is a ``float`` of seconds, a :class:`Size` an
``int`` of bytes, an :class:`Address` a ``(host, port)`` tuple.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import urlsplit

__all__ = ["Address", "Duration", "Secret", "Size", "URL"]

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|s|m|h)")
_DURATION_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE = re.compile(r"(\d+(?:\.\d*)?)\s*([kKMGT]i?B|B)?")
_SIZE_UNITS = {
    "B": 1,
    "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    "KiB": 2**10, "kiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
}  # fmt: skip


class Duration(float):
    """A non-negative number of seconds, written ``"500ms"``, ``"2s"``, ``"1m30s"`` or ``1.5``.

    >>> Duration.parse("1m30s"), Duration.parse("250ms"), Duration.parse("2")
    (90.0, 0.25, 2.0)
    """

    __slots__ = ()

    @classmethod
    def parse(cls, text: str | float) -> Duration:
        """Read a duration; a bare number is seconds."""
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            seconds = float(text)
        else:
            seconds = _parse_duration_text(str(text))
        if not seconds >= 0:
            raise ValueError(f"expected a duration >= 0, got {text!r}")
        return cls(seconds)

    def __str__(self) -> str:
        if self and self < 1:
            return f"{self * 1000:g}ms"
        return f"{float(self):g}s"


def _parse_duration_text(text: str) -> float:
    stripped = text.strip()
    try:
        return float(stripped)
    except ValueError:
        pass
    parts = list(_DURATION.finditer(stripped))
    if not parts or "".join(p.group(0) for p in parts) != stripped:
        raise ValueError(
            f"expected a duration such as 500ms, 2s, 1m or 1h30m, got {text!r}"
        ) from None
    return sum(float(p.group(1)) * _DURATION_UNITS[p.group(2)] for p in parts)


class Size(int):
    """A number of bytes, written ``"1MiB"``, ``"512KiB"``, ``"10MB"`` or ``1024``.

    >>> Size.parse("1MiB"), Size.parse("2kB"), Size.parse(512)
    (1048576, 2000, 512)
    """

    __slots__ = ()

    @classmethod
    def parse(cls, text: str | int) -> Size:
        """Read a size; a bare number is bytes."""
        if isinstance(text, int) and not isinstance(text, bool):
            value = text
        else:
            match = _SIZE.fullmatch(str(text).strip())
            if match is None:
                raise ValueError(f"expected a size such as 512, 64KiB, 1MiB or 10MB, got {text!r}")
            value = int(float(match.group(1)) * _SIZE_UNITS[match.group(2) or "B"])
        if value < 0:
            raise ValueError(f"expected a size >= 0, got {text!r}")
        return cls(value)

    def __str__(self) -> str:
        for unit in ("TiB", "GiB", "MiB", "KiB"):
            if self and self % _SIZE_UNITS[unit] == 0:
                return f"{self // _SIZE_UNITS[unit]}{unit}"
        return f"{int(self)}B"


class Address(NamedTuple):
    """A ``host:port`` network address (``[::1]:8080`` for IPv6); port 0 picks a free one.

    >>> Address.parse("127.0.0.1:8080")
    Address(host='127.0.0.1', port=8080)
    >>> str(Address("::1", 80))
    '[::1]:80'
    """

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Address:
        """Read ``host:port``."""
        host, sep, port = str(text).strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"expected host:port with a port from 0 to 65535, got {text!r}")
        return cls(host.removeprefix("[").removesuffix("]"), int(port))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


class URL(str):
    """An absolute URL with a scheme and a host, such as ``http://127.0.0.1:2379``.

    >>> URL.parse("http://127.0.0.1:2379")
    'http://127.0.0.1:2379'
    """

    __slots__ = ()

    @classmethod
    def parse(cls, text: str) -> URL:
        """Read a URL; refuse one without a scheme or a host."""
        parts = urlsplit(str(text).strip())
        if not parts.scheme or not parts.netloc:
            raise ValueError(f"expected an absolute URL such as http://host:port, got {text!r}")
        return cls(str(text).strip())


class Secret:
    """A value that never shows itself: not in ``repr``, ``str``, logs or ``--help``.

    Read it with :meth:`reveal` where it is used.  Settings fields of this type
    also accept ``<FIELD>_FILE`` (a path whose content is the secret), the way
    container platforms mount secrets.

    >>> token = Secret("s3cr3t")
    >>> token, token.reveal()
    (Secret('***'), 's3cr3t')
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    @classmethod
    def parse(cls, text: str) -> Secret:
        """Wrap ``text``."""
        return cls(str(text))

    def reveal(self) -> str:
        """The secret itself."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__
