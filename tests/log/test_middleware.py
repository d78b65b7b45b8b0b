"""logging_middleware: one structured line per call, levels by fault, context fields."""

from __future__ import annotations

import asyncio

import pytest

from kitpy import Code, Context, InvalidArgument, Key, Unavailable, chain
from kitpy.context import REQUEST_ID
from kitpy.log import logging_middleware
from kitpy.metrics import instrumenting_middleware
from kitpy.testing import CapturedLogs, FakeClock, RequestMetrics, SpanRecorder
from kitpy.tracing import tracing_middleware


async def uppercase(ctx: Context, request: str) -> str:
    if not request:
        raise InvalidArgument("empty string")
    if request == "down":
        raise Unavailable("backend down")
    if request == "boom":
        raise RuntimeError("secret internals")
    return request.upper()


async def test_success_logs_one_info_line_with_method_took_and_code() -> None:
    logs = CapturedLogs()
    clock = FakeClock()

    async def slow(ctx: Context, request: str) -> str:
        clock.advance(0.25)
        return request

    endpoint = logging_middleware(logs.logger, clock=clock)(slow)
    assert await endpoint(Context(), "hi") == "hi"
    entry = logs.assert_logged("endpoint call", method="slow", code="OK")
    assert entry["log_level"] == "info"
    assert entry["took"] == pytest.approx(0.25)
    assert isinstance(entry["took"], float)
    assert "error" not in entry
    assert len(logs.entries) == 1


async def test_client_fault_logs_warning_with_code_and_message_no_traceback() -> None:
    logs = CapturedLogs()
    endpoint = logging_middleware(logs.logger, method="uppercase")(uppercase)
    with pytest.raises(InvalidArgument):
        await endpoint(Context(), "")
    entry = logs.assert_logged(method="uppercase", code="INVALID_ARGUMENT")
    assert entry["log_level"] == "warning"
    assert entry["error"] == "empty string"
    assert "exc_info" not in entry


@pytest.mark.parametrize(
    ("request_value", "code", "message", "exc_type"),
    [
        ("down", "UNAVAILABLE", "backend down", Unavailable),
        ("boom", "UNKNOWN", "secret internals", RuntimeError),
    ],
)
async def test_server_fault_logs_error_with_exception(
    request_value: str, code: str, message: str, exc_type: type[BaseException]
) -> None:
    logs = CapturedLogs()
    endpoint = logging_middleware(logs.logger)(uppercase)
    with pytest.raises(exc_type):
        await endpoint(Context(), request_value)
    entry = logs.assert_logged(code=code)
    assert entry["log_level"] == "error"
    assert entry["error"] == message
    assert isinstance(entry["exc_info"], exc_type)
    assert entry["exc_info"].__traceback__ is not None


async def test_cancellation_is_logged_and_propagates() -> None:
    logs = CapturedLogs()
    started = asyncio.Event()

    async def hang(ctx: Context, request: str) -> str:
        started.set()
        await asyncio.sleep(3600)
        return request

    endpoint = logging_middleware(logs.logger)(hang)

    async def call() -> str:
        return await endpoint(Context(), "x")

    task = asyncio.create_task(call())
    async with asyncio.timeout(5):
        await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    entry = logs.assert_logged(code=Code.CANCELLED.name)
    assert entry["log_level"] == "warning"


async def test_request_id_from_core_key_and_custom_keys_and_fields() -> None:
    logs = CapturedLogs()
    other: Key[str] = Key("other_request_id")
    endpoint = logging_middleware(
        logs.logger,
        request_id_keys=(REQUEST_ID, other),
        fields=lambda ctx: {"tenant": "acme"},
    )(uppercase)
    await endpoint(Context().with_value(REQUEST_ID, "r-1"), "a")
    await endpoint(Context().with_value(other, "r-2"), "b")
    await endpoint(Context(), "c")
    assert [e.get("request_id") for e in logs.entries] == ["r-1", "r-2", None]
    assert all(e["tenant"] == "acme" for e in logs.entries)


async def test_filtered_level_drops_lines() -> None:
    logs = CapturedLogs(level=40)  # logging.ERROR
    endpoint = logging_middleware(logs.logger)(uppercase)
    await endpoint(Context(), "ok")
    with pytest.raises(InvalidArgument):
        await endpoint(Context(), "")
    with pytest.raises(Unavailable):
        await endpoint(Context(), "down")
    assert [e["code"] for e in logs.entries] == ["UNAVAILABLE"]


async def test_works_as_a_decorator() -> None:
    logs = CapturedLogs()

    @logging_middleware(logs.logger, method="shout")
    async def shout(ctx: Context, request: str) -> str:
        return request.upper() + "!"

    assert await shout(Context(), "hey") == "HEY!"
    logs.assert_logged(method="shout", code="OK")


async def test_stacked_layers_keep_the_endpoint_name() -> None:
    logs = CapturedLogs()
    metrics = RequestMetrics()
    spans = SpanRecorder()
    stack = chain(
        tracing_middleware(spans.tracer, name="span-name"),
        logging_middleware(logs.logger),
        instrumenting_middleware(metrics.requests, metrics.latency),
    )
    endpoint = stack(uppercase)
    assert endpoint.__name__ == "uppercase"  # type: ignore[attr-defined]
    await endpoint(Context(), "x")
    logs.assert_logged(method="uppercase")
    metrics.assert_count(1, method="uppercase")
    spans.one("span-name")


async def test_the_context_request_id_wins_over_a_field_of_that_name() -> None:
    logs = CapturedLogs()
    endpoint = logging_middleware(
        logs.logger, fields=lambda ctx: {"request_id": "from-fields", "tenant": "acme"}
    )(uppercase)
    await endpoint(Context().with_value(REQUEST_ID, "r-1"), "a")
    await endpoint(Context(), "b")
    with pytest.raises(InvalidArgument):
        await endpoint(Context().with_value(REQUEST_ID, "r-3"), "")
    assert [e["request_id"] for e in logs.entries] == ["r-1", "from-fields", "r-3"]
    assert all(e["tenant"] == "acme" for e in logs.entries)
