"""Errors only a Server sees -- a request that does not decode, a response that does not encode --
are logged, counted and marked on the span, once; an endpoint's own error is not reported twice.

Real aiohttp and grpc.aio servers on 127.0.0.1; the endpoint is wrapped in
``call_logging`` and ``call_metrics`` as a service would wrap it, and the
Server's ``error_handler`` is ``server_error_logging`` + ``server_error_metrics``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import grpc.aio
import pytest
from aiohttp import web
from google.protobuf.wrappers_pb2 import StringValue
from opentelemetry.trace import StatusCode

from kitpy import Context, InvalidArgument, chain, named
from kitpy.context import ENDPOINT_ERROR, ENDPOINT_NAME
from kitpy.errors import Internal
from kitpy.log import call_logging, server_error_logging
from kitpy.metrics import call_metrics, server_error_metrics
from kitpy.testing import CapturedLogs, RequestMetrics, SpanRecorder
from kitpy.tracing import (
    grpc_server_before,
    grpc_server_finalizer,
    http_server_before,
    http_server_finalizer,
)
from kitpy.transport import grpc as kit_grpc
from kitpy.transport import http as kit_http

from .grpc.harness import PATH, echo_client, serving

JSON = {"Content-Type": "application/json"}

UNENCODABLE = "unencodable"  # the endpoint answers something no encoder can write
REFUSED = "refused"  # the endpoint raises InvalidArgument


@dataclass(frozen=True, slots=True)
class Echo:
    s: Any


@dataclass
class Observed:
    """What the service's log, metrics and tracer saw."""

    logs: CapturedLogs
    metrics: RequestMetrics
    spans: SpanRecorder
    handled: list[tuple[bool | None, str | None]]

    def error_handler(self) -> Callable[[Context, BaseException], None]:
        log_error = server_error_logging(self.logs.logger)
        count_error = server_error_metrics(self.metrics.requests)

        def handle(ctx: Context, exc: BaseException) -> None:
            self.handled.append((ctx.get(ENDPOINT_ERROR), ctx.get(ENDPOINT_NAME)))
            log_error(ctx, exc)
            count_error(ctx, exc)

        return handle


def nonzero(metrics: RequestMetrics) -> dict[tuple[str, str], float]:
    """The counts recorded (call_metrics binds the OK child of a named endpoint up front)."""
    return {labels: count for labels, count in metrics.counts().items() if count}


@pytest.fixture
def observed() -> Observed:
    return Observed(CapturedLogs(), RequestMetrics(), SpanRecorder(), [])


def echo_endpoint(observed: Observed) -> Callable[[Context, str], Awaitable[Any]]:
    async def echo(ctx: Context, s: str) -> Any:
        if s == REFUSED:
            raise InvalidArgument("refused on purpose")
        if s == UNENCODABLE:
            return object()
        return s.upper()

    stack = chain(
        call_logging(observed.logs.logger),
        call_metrics(observed.metrics.requests, observed.metrics.latency),
    )
    return stack(named("echo")(echo))


Call = Callable[[str], Awaitable[tuple[str, str | None]]]
"""Send one request: a string, or ``None`` for a body that does not decode; -> (code, message)."""


@asynccontextmanager
async def http_service(observed: Observed) -> AsyncIterator[Call]:
    endpoint = echo_endpoint(observed)

    async def decode(ctx: Context, request: web.Request) -> str:
        return str((await kit_http.decode_json(Echo)(ctx, request)).s)

    def encode(ctx: Context, response: Any) -> web.StreamResponse:
        return kit_http.encode_json(ctx, Echo(s=response))

    app = web.Application()
    server = kit_http.Server(
        endpoint,
        decode,
        encode,
        before=[http_server_before(observed.spans.tracer)],
        error_handler=observed.error_handler(),
        finalizer=[http_server_finalizer()],
    )
    kit_http.add_routes(app, {"POST /echo": server})
    running = await kit_http.start_app(app, host="127.0.0.1", port=0, grace_period=1.0)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        url = running.url

        async def call(s: str) -> tuple[str, str | None]:
            body = b"{not json" if s == "" else json.dumps({"s": s}).encode()
            async with session.post(url / "echo", data=body, headers=JSON) as resp:
                answer = await resp.json()
            if resp.status == 200:
                return "OK", None
            return answer["error"]["code"], answer["error"]["message"]

        try:
            yield call
        finally:
            await running.stop()


@asynccontextmanager
async def grpc_service(observed: Observed) -> AsyncIterator[Call]:
    endpoint = echo_endpoint(observed)

    def decode(ctx: Context, message: StringValue) -> str:
        if message.value == "":
            raise InvalidArgument("invalid request: an empty value does not decode")
        return message.value

    def encode(ctx: Context, value: Any) -> StringValue:
        return StringValue(value=value)  # TypeError for anything but a str

    server: kit_grpc.Server[str, Any, Any, Any] = kit_grpc.Server(
        endpoint,
        decode,
        encode,
        method=PATH,
        before=[grpc_server_before(observed.spans.tracer)],
        error_handler=observed.error_handler(),
        finalizer=[grpc_server_finalizer()],
    )
    async with serving(server) as running:
        client = echo_client(running.channel)

        async def call(s: str) -> tuple[str, str | None]:
            try:
                await client(Context(), s)
            except (InvalidArgument, Internal) as exc:
                return exc.code.name, exc.message
            except grpc.aio.AioRpcError as exc:  # pragma: no cover - a failure message
                return exc.code().name, exc.details()
            return "OK", None

        yield call


SERVICES = {"http": http_service, "grpc": grpc_service}


@pytest.fixture(params=sorted(SERVICES))
def service(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return SERVICES[request.param]


async def test_an_unencodable_response_is_logged_with_its_traceback_counted_and_marked(
    observed: Observed, service: Callable[..., Any]
) -> None:
    async with service(observed) as call:
        assert await call(UNENCODABLE) == ("INTERNAL", "could not encode the response")

    # the endpoint itself succeeded, and its line says so ...
    observed.logs.assert_logged_once("endpoint call", method="echo", code="OK")
    # ... and the Server's failure has its own line, with the traceback of the cause
    entry = observed.logs.assert_logged_once("request failed", method="echo", code="INTERNAL")
    assert entry["log_level"] == "error"
    assert entry["error"] == "could not encode the response"
    exc = entry["exc_info"]
    assert isinstance(exc, Internal)
    assert isinstance(exc.__cause__, TypeError)
    assert entry["request_id"]
    observed.metrics.assert_count(1, method="echo", code="OK")
    assert observed.metrics.requests.value(method="echo", code="INTERNAL") == 1
    assert observed.handled == [(False, "echo")]
    (span,) = observed.spans.spans
    assert span.status.status_code is StatusCode.ERROR


async def test_an_undecodable_request_is_logged_as_a_warning_and_counted_once(
    observed: Observed, service: Callable[..., Any]
) -> None:
    async with service(observed) as call:
        code, _ = await call("")
    assert code == "INVALID_ARGUMENT"
    entry = observed.logs.assert_logged_once(
        "request failed", method="echo", code="INVALID_ARGUMENT"
    )
    assert entry["log_level"] == "warning"
    assert "exc_info" not in entry
    assert observed.logs.find("endpoint call") == []  # the endpoint never ran
    assert observed.metrics.requests.value(method="echo", code="INVALID_ARGUMENT") == 1
    assert nonzero(observed.metrics) == {("echo", "INVALID_ARGUMENT"): 1}


async def test_an_endpoint_error_is_reported_once_by_the_endpoint_middleware(
    observed: Observed, service: Callable[..., Any]
) -> None:
    async with service(observed) as call:
        assert await call(REFUSED) == ("INVALID_ARGUMENT", "refused on purpose")
        assert await call("fine") == ("OK", None)
    assert observed.handled == [(True, "echo")]  # the handler ran, and knew the endpoint raised
    assert len(observed.logs.entries) == 2  # one line per call, from call_logging
    observed.logs.assert_logged_once("endpoint call", method="echo", code="INVALID_ARGUMENT")
    assert observed.logs.find("request failed") == []
    assert nonzero(observed.metrics) == {("echo", "INVALID_ARGUMENT"): 1, ("echo", "OK"): 1}


async def test_endpoint_errors_true_reports_every_error_for_a_service_without_call_middleware() -> (
    None
):
    logs, metrics = CapturedLogs(), RequestMetrics()
    log_error = server_error_logging(logs.logger, endpoint_errors=True)
    count_error = server_error_metrics(metrics.requests, endpoint_errors=True)

    async def refuse(ctx: Context, request: Echo) -> Echo:
        raise InvalidArgument("no")

    def handle(ctx: Context, exc: BaseException) -> None:
        log_error(ctx, exc)
        count_error(ctx, exc)

    app = web.Application()
    server = kit_http.Server(
        refuse, kit_http.decode_json(Echo), kit_http.encode_json, error_handler=handle
    )
    kit_http.add_routes(app, {"POST /refuse": server})
    running = await kit_http.start_app(app, host="127.0.0.1", port=0, grace_period=1.0)
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.post(running.url / "refuse", data=b'{"s": "a"}', headers=JSON) as resp,
        ):
            assert resp.status == 400
    finally:
        await running.stop()
    # no name given: the route names the operation
    logs.assert_logged_once("request failed", method="POST /refuse", code="INVALID_ARGUMENT")
    assert metrics.requests.value(method="POST /refuse", code="INVALID_ARGUMENT") == 1
