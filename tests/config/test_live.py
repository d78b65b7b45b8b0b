"""Live settings: validated swaps, rejections that keep the last good value, the file source."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kitpy.config import Duration, Live, Rejection
from kitpy.config.file import FileSettings
from kitpy.metrics.memory import MemoryCounter


def _positive(value: float | None) -> None:
    if value is not None and value <= 0:
        raise ValueError("must be > 0")


def _rate(
    *,
    on_reject: Callable[[Rejection], None] | None = None,
    rejections: MemoryCounter | None = None,
) -> Live[float | None]:
    return Live(
        None,
        name="rate_limit",
        type=float | None,
        check=_positive,
        on_reject=on_reject,
        rejections=rejections,
    )


async def _until(condition: Callable[[], bool], *, within: float = 3.0) -> None:
    for _ in range(int(within / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not true within {within} s")


def test_a_value_is_converted_checked_then_swapped_and_subscribers_see_it() -> None:
    seen: list[float | None] = []
    rate = _rate()
    unsubscribe = rate.subscribe(seen.append)
    assert rate.set("5", source="test") is True
    assert rate.value == 5.0
    assert rate.set("5.0") is True  # the same value: no second notification
    rate.reset()
    assert [rate.value] == [None]
    unsubscribe()
    rate.set("7")
    assert seen == [5.0, None]


def test_an_invalid_value_is_rejected_logged_counted_and_the_last_good_value_stays() -> None:
    rejected: list[Rejection] = []
    counter = MemoryCounter("config_rejections_total", labelnames=("setting",))
    rate = _rate(on_reject=rejected.append, rejections=counter)
    rate.set("5")
    assert rate.set("banana", source="etcd key /config/x/rate_limit") is False
    assert rate.set("-1") is False
    assert rate.value == 5.0
    assert [str(r) for r in rejected] == [
        "live setting rate_limit: rejected 'banana' from etcd key /config/x/rate_limit: "
        "expected a number, got 'banana'",
        "live setting rate_limit: rejected '-1': must be > 0",
    ]
    assert counter.value(setting="rate_limit") == 2


def test_the_default_rejection_is_an_error_log(caplog: pytest.LogCaptureFixture) -> None:
    timeout = Live(Duration(1.0), name="timeout")
    with caplog.at_level("ERROR", logger="kitpy.config"):
        assert timeout.set("soon") is False
    assert "live setting timeout: rejected 'soon'" in caplog.text
    assert timeout.value == 1.0


def test_none_needs_a_type() -> None:
    with pytest.raises(TypeError, match="needs type="):
        Live(None, name="x")


async def test_the_file_source_follows_edits_rejects_bad_ones_and_deletion_resets(
    tmp_path: Path,
) -> None:
    path = tmp_path / "live.toml"
    problems: list[str] = []
    rejected: list[Rejection] = []
    rate = _rate(on_reject=rejected.append)
    timeout = Live(Duration(2.0), name="client.timeout", on_reject=rejected.append)
    path.write_text("rate_limit = 5\n")
    settings: dict[str, Live[Any]] = {"rate_limit": rate, "client.timeout": timeout}
    async with FileSettings(path, settings, interval=0.02, on_problem=problems.append):
        assert (rate.value, timeout.value) == (5.0, 2.0)  # applied before start returns
        _write(path, 'rate_limit = 8\n[client]\ntimeout = "250ms"\n')
        await _until(lambda: timeout.value == 0.25)
        assert rate.value == 8.0
        _write(path, "rate_limit = 'banana'\n[client]\ntimeout = '250ms'\n")
        await _until(lambda: len(rejected) == 1)
        assert rate.value == 8.0
        _write(path, "rate_limit = = 3\n")
        await _until(lambda: any("not valid TOML" in p for p in problems))
        assert (rate.value, timeout.value) == (8.0, 0.25)
        _write(path, "rate_limit = 3\nburst = 2\n")
        await _until(lambda: rate.value == 3.0)
        assert timeout.value == 2.0  # absent from the file: back to its static value
        assert any("burst is not a live setting" in p for p in problems)
        path.unlink()
        await _until(lambda: rate.value is None)


def _write(path: Path, text: str) -> None:
    """Write and move the mtime on, so a change within one clock tick is still seen."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    os.utime(path, ns=(before + 10**9, before + 10**9))


def test_a_subscriber_that_refuses_a_value_rolls_it_back() -> None:
    rejected: list[Rejection] = []
    burst = Live(10, name="burst", on_reject=rejected.append)
    applied: list[int] = []

    def apply(value: int) -> None:
        if value < 1:
            raise ValueError("burst must be at least 1")
        applied.append(value)

    burst.subscribe(apply)
    assert burst.set("20")
    assert not burst.set("0")
    assert burst.value == 20
    assert applied == [20, 20]  # re-applied after the refusal
    assert str(rejected[0]) == "live setting burst: rejected '0': burst must be at least 1"
