"""call_logging: one structured line per call, levels by fault, context fields."""

from __future__ import annotations

import asyncio
import io
import json
from types import MappingProxyType

import pytest

from kitpy import Code, Context, InvalidArgument, Unavailable, chain, named
from kitpy.context import ENDPOINT_ERROR, ENDPOINT_NAME, OPERATION, REQUEST_ID
from kitpy.endpoint import endpoint_name
from kitpy.log import call_logging, make_logger, server_error_logging
from kitpy.metrics import call_metrics
from kitpy.testing import CapturedLogs, FakeClock, RequestMetrics, SpanRecorder
from kitpy.tracing import call_tracing


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

    endpoint = call_logging(logs.logger, clock=clock)(named("slow")(slow))
    assert await endpoint(Context(), "hi") == "hi"
    entry = logs.assert_logged_once("endpoint call", method="slow", code="OK")
    assert entry["log_level"] == "info"
    assert entry["took"] == pytest.approx(0.25)
    assert isinstance(entry["took"], float)
    assert "error" not in entry
    assert len(logs.entries) == 1


async def test_client_fault_logs_warning_with_code_and_message_no_traceback() -> None:
    logs = CapturedLogs()
    endpoint = call_logging(logs.logger, name="uppercase")(uppercase)
    with pytest.raises(InvalidArgument):
        await endpoint(Context(), "")
    entry = logs.assert_logged_once(method="uppercase", code="INVALID_ARGUMENT")
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
    endpoint = call_logging(logs.logger)(uppercase)
    with pytest.raises(exc_type):
        await endpoint(Context(), request_value)
    entry = logs.assert_logged_once(code=code)
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

    endpoint = call_logging(logs.logger)(hang)

    async def call() -> str:
        return await endpoint(Context(), "x")

    task = asyncio.create_task(call())
    async with asyncio.timeout(5):
        await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    entry = logs.assert_logged_once(code=Code.CANCELLED.name)
    assert entry["log_level"] == "warning"


async def test_request_id_from_the_context_and_extra_fields() -> None:
    logs = CapturedLogs()
    endpoint = call_logging(
        logs.logger, fields=lambda ctx: {"tenant": "acme", "request_id": "from fields"}
    )(uppercase)
    await endpoint(Context().with_value(REQUEST_ID, "r-1"), "a")
    await endpoint(Context(), "c")
    assert [e.get("request_id") for e in logs.entries] == ["r-1", "from fields"]
    assert all(e["tenant"] == "acme" for e in logs.entries)


async def test_filtered_level_drops_lines() -> None:
    logs = CapturedLogs(level=40)  # logging.ERROR
    endpoint = call_logging(logs.logger)(uppercase)
    await endpoint(Context(), "ok")
    with pytest.raises(InvalidArgument):
        await endpoint(Context(), "")
    with pytest.raises(Unavailable):
        await endpoint(Context(), "down")
    assert [e["code"] for e in logs.entries] == ["UNAVAILABLE"]


async def test_works_as_a_decorator() -> None:
    logs = CapturedLogs()

    @call_logging(logs.logger, name="shout")
    async def shout(ctx: Context, request: str) -> str:
        return request.upper() + "!"

    assert await shout(Context(), "hey") == "HEY!"
    logs.assert_logged_once(method="shout", code="OK")


async def test_stacked_layers_keep_the_endpoint_name() -> None:
    logs = CapturedLogs()
    metrics = RequestMetrics()
    spans = SpanRecorder()
    stack = chain(
        call_tracing(spans.tracer, name="span-name"),
        call_logging(logs.logger),
        call_metrics(metrics.requests, metrics.latency),
    )
    endpoint = stack(named("uppercase")(uppercase))
    assert endpoint_name(endpoint) == "span-name"  # the outermost explicit name is carried out
    await endpoint(Context(), "x")
    logs.assert_logged_once(method="uppercase")
    metrics.assert_count(1, method="uppercase")
    spans.one("span-name")


async def test_without_a_name_the_context_operation_is_used_never_a_function_name() -> None:
    logs = CapturedLogs()
    metrics = RequestMetrics()
    spans = SpanRecorder()
    endpoint = chain(
        call_tracing(spans.tracer),
        call_logging(logs.logger),
        call_metrics(metrics.requests, metrics.latency),
    )(uppercase)
    await endpoint(Context().with_value(OPERATION, "POST /uppercase"), "x")
    await endpoint(Context(), "y")  # no name anywhere: "unknown", not "uppercase" or "endpoint"
    logs.assert_logged_once(method="POST /uppercase")
    metrics.assert_count(1, method="POST /uppercase")
    spans.one("POST /uppercase")
    logs.assert_logged_once(method="unknown")
    metrics.assert_count(1, method="unknown")


async def test_the_context_request_id_wins_over_a_field_of_that_name() -> None:
    logs = CapturedLogs()
    endpoint = call_logging(
        logs.logger, fields=lambda ctx: {"request_id": "from-fields", "tenant": "acme"}
    )(uppercase)
    await endpoint(Context().with_value(REQUEST_ID, "r-1"), "a")
    await endpoint(Context(), "b")
    with pytest.raises(InvalidArgument):
        await endpoint(Context().with_value(REQUEST_ID, "r-3"), "")
    assert [e["request_id"] for e in logs.entries] == ["r-1", "from-fields", "r-3"]
    assert all(e["tenant"] == "acme" for e in logs.entries)


def test_server_error_logging_summarises_refusals_under_load() -> None:
    logs, clock = CapturedLogs(), FakeClock()
    handle = server_error_logging(logs.logger, interval=10.0, clock=clock)
    ctx = Context().with_values({ENDPOINT_ERROR: False, ENDPOINT_NAME: "upper"})
    for _ in range(5):
        handle(ctx, Unavailable("too many concurrent requests"))
    clock.advance(10.0)
    handle(ctx, Unavailable("too many concurrent requests"))
    handle(ctx, InvalidArgument("bad body"))  # not a refusal: its own line, at once
    refused = logs.find("requests refused")
    assert [(e["count"], e["code"], e["method"]) for e in refused] == [
        (1, "UNAVAILABLE", "upper"),  # the first at once
        (5, "UNAVAILABLE", "upper"),  # the next four and this one, an interval later
    ]
    assert all("exc_info" not in e for e in refused)  # no traceback for a refusal
    logs.assert_logged_once("request failed", code="INVALID_ARGUMENT")
    handle(ctx, Unavailable("too many concurrent requests"))  # counted, not logged yet
    handle.flush()  # on the way out: nothing counted is lost
    assert [e["count"] for e in logs.find("requests refused")] == [1, 5, 1]


async def test_fields_lines_keep_their_keys_order_and_precedence() -> None:
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    logger = make_logger(stream=out, service="svc")
    shared = MappingProxyType({"trace_id": "t-1", "span_id": "s-1"})  # read-only, reused
    plain = call_logging(logger, fields=lambda ctx: shared)(named("upper")(uppercase))
    clashing = call_logging(
        logger, fields=lambda ctx: {"method": "from-fields", "request_id": "f", "tenant": "acme"}
    )(named("upper")(uppercase))
    unnamed = call_logging(logger, fields=lambda ctx: shared)(uppercase)
    await plain(Context().with_value(REQUEST_ID, "r-1"), "a")
    await plain(Context(), "b")
    await clashing(Context().with_value(REQUEST_ID, "r-2"), "c")
    await clashing(Context(), "d")
    await unnamed(Context().with_value(OPERATION, "POST /upper"), "e")
    with pytest.raises(InvalidArgument):
        await plain(Context().with_value(REQUEST_ID, "r-3"), "")
    out.flush()
    buffer = out.buffer
    assert isinstance(buffer, io.BytesIO)
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    stamp = ["event", "level", "timestamp"]
    ok = ["service", "took", "code", "trace_id", "span_id", "method"]
    assert [list(line) for line in lines] == [
        [*ok, "request_id", *stamp],
        [*ok, *stamp],
        ["service", "took", "code", "method", "request_id", "tenant", *stamp],
        ["service", "took", "code", "method", "request_id", "tenant", *stamp],
        [*ok, *stamp],
        ["service", "code", "error", "took", "trace_id", "span_id", "method", "request_id", *stamp],
    ]
    assert [line["method"] for line in lines] == [*["upper"] * 4, "POST /upper", "upper"]
    assert [line.get("request_id") for line in lines] == ["r-1", None, "r-2", "f", None, "r-3"]
    assert lines[0]["trace_id"] == "t-1"
    assert dict(shared) == {"trace_id": "t-1", "span_id": "s-1"}


async def test_lines_through_write_event_match_structlogs_keyword_path() -> None:
    """A kitpy JSON logger takes each line as one dict; any other logger gets keywords."""
    fast_out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    text_out = io.StringIO()  # no binary buffer: make_logger takes structlog's processor path
    fast = make_logger(stream=fast_out, service="svc")
    slow = make_logger(stream=text_out, service="svc")
    assert hasattr(fast, "write_event")
    assert not hasattr(slow, "write_event")
    clock = FakeClock()
    fields = [None, lambda ctx: {"tenant": "acme", "method": "from-fields"}]
    contexts = [Context(), Context().with_values({REQUEST_ID: "r-1", OPERATION: "POST /u"})]
    for logger in (fast, slow):
        for extra in fields:
            for layer_name in ("upper", None):
                layer = call_logging(logger, name=layer_name, fields=extra, clock=clock)
                for ctx in contexts:
                    await layer(uppercase)(ctx, "a")
    fast_out.flush()
    buffer = fast_out.buffer
    assert isinstance(buffer, io.BytesIO)
    fast_lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    slow_lines = [json.loads(line) for line in text_out.getvalue().splitlines()]
    assert len(fast_lines) == len(slow_lines) == 8
    for line in (*fast_lines, *slow_lines):
        line.pop("timestamp")
    assert [list(line) for line in fast_lines] == [list(line) for line in slow_lines]
    assert fast_lines == slow_lines
    assert [line["method"] for line in fast_lines] == ["upper", "upper", "unknown", "POST /u"] * 2
    assert list(fast_lines[-1]) == [
        "service", "took", "code", "tenant", "method", "request_id", "event", "level"
    ]  # fmt: skip
