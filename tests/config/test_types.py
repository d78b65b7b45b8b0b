"""Every value type and conversion kitpy.config understands, and each error message."""

from __future__ import annotations

import enum
import re
from typing import Literal

import pytest

from kitpy.config import URL, Address, Duration, Secret, Size, convert


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("2s", 2.0), ("1m", 60.0), ("1h", 3600.0), ("1m30s", 90.0),
     ("1.5s", 1.5), ("250us", 0.00025), ("3", 3.0), ("0.25", 0.25), (" 2s ", 2.0), (4, 4.0)],
)  # fmt: skip
def test_durations(text: str | int, seconds: float) -> None:
    value = Duration.parse(text)
    assert isinstance(value, Duration)
    assert value == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "fast", "2 s", "s", "1x", "-1s", "-2", "1s-"])
def test_bad_durations_say_what_was_expected(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        Duration.parse(text)


def test_a_duration_prints_as_people_write_it() -> None:
    assert (str(Duration(0.25)), str(Duration(2)), str(Duration(0))) == ("250ms", "2s", "0s")


@pytest.mark.parametrize(
    ("text", "size"),
    [("1MiB", 2**20), ("512KiB", 512 * 1024), ("10MB", 10**7), ("2kB", 2000), ("1GiB", 2**30),
     ("100", 100), ("100B", 100), (4096, 4096), ("1.5KiB", 1536)],
)  # fmt: skip
def test_sizes(text: str | int, size: int) -> None:
    assert Size.parse(text) == size
    assert isinstance(Size.parse(text), Size)


@pytest.mark.parametrize("text", ["", "big", "1 MiBs", "1mb", "-1", "MiB"])
def test_bad_sizes_say_what_was_expected(text: str) -> None:
    with pytest.raises(ValueError, match="expected a size"):
        Size.parse(text)


@pytest.mark.parametrize(
    ("text", "address"),
    [("127.0.0.1:8080", ("127.0.0.1", 8080)), ("[::1]:80", ("::1", 80)),
     ("localhost:0", ("localhost", 0)), ("svc.internal:65535", ("svc.internal", 65535))],
)  # fmt: skip
def test_addresses(text: str, address: tuple[str, int]) -> None:
    assert Address.parse(text) == address


@pytest.mark.parametrize("text", ["8080", ":8080", "host:", "host:http", "host:70000", ""])
def test_bad_addresses_say_what_was_expected(text: str) -> None:
    with pytest.raises(ValueError, match="expected host:port with a port from 0 to 65535"):
        Address.parse(text)


def test_an_address_prints_back_as_written() -> None:
    assert str(Address.parse("[::1]:80")) == "[::1]:80"
    assert str(Address.parse("10.0.0.1:9")) == "10.0.0.1:9"


def test_urls() -> None:
    assert URL.parse("http://127.0.0.1:2379") == "http://127.0.0.1:2379"
    for bad in ["127.0.0.1:2379", "http://", "/path", ""]:
        with pytest.raises(ValueError, match="expected an absolute URL"):
            URL.parse(bad)


def test_a_secret_never_shows_itself() -> None:
    token = Secret("hunter2")
    assert "hunter2" not in repr(token)
    assert "hunter2" not in str(token)
    assert "hunter2" not in f"{token}"
    assert "hunter2" not in repr([token])
    assert token.reveal() == "hunter2"
    assert token == Secret("hunter2")
    assert token != Secret("other")
    assert not Secret("")


class Level(enum.Enum):
    DEBUG = "debug"
    INFO = "info"


class Port(int):
    @classmethod
    def parse(cls, text: object) -> Port:
        return cls(int(str(text)))


@pytest.mark.parametrize(
    ("raw", "tp", "expected"),
    [
        ("8", int, 8), (8, int, 8), ("2.5", float, 2.5), (2, float, 2.0), ("x", str, "x"),
        ("on", bool, True), ("No", bool, False), ("1", bool, True), (False, bool, False),
        ("debug", Level, Level.DEBUG), ("INFO", Level, Level.INFO),
        ("b", Literal["a", "b"], "b"), ("a, b,,c", list[str], ["a", "b", "c"]),
        (["1", 2], list[int], [1, 2]), ("1,2", tuple[int, ...], (1, 2)), ("", list[str], []),
        ("", float | None, None), ("none", int | None, None), ("3", int | None, 3),
        (None, int | None, None), ("2s", Duration, 2.0), ("7", Port, 7),
        ("1s,500ms", list[Duration], [1.0, 0.5]),
    ],
)  # fmt: skip
def test_convert(raw: object, tp: object, expected: object) -> None:
    assert convert(raw, tp) == expected


@pytest.mark.parametrize(
    ("raw", "tp", "message"),
    [
        ("eight", int, "expected an integer, got 'eight'"),
        (True, int, "expected an integer, got True"),
        ("x", float, "expected a number, got 'x'"),
        ("maybe", bool, "expected true or false"),
        ("trace", Level, "expected one of debug, info, got 'trace'"),
        ("c", Literal["a", "b"], "expected one of a, b, got 'c'"),
        (5, str, "expected text, got 5"),
        ({"a": 1}, list[int], "expected a list"),
        ("1,x", list[int], "expected an integer, got 'x'"),
    ],
)  # fmt: skip
def test_convert_errors_say_what_was_expected(raw: object, tp: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        convert(raw, tp)


def test_a_type_without_parse_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="give it a parse classmethod"):
        convert("x", complex)


def test_a_size_prints_in_the_largest_whole_binary_unit() -> None:
    assert [str(Size(n)) for n in (2**20, 3 * 1024, 1000, 0)] == ["1MiB", "3KiB", "1000B", "0B"]
