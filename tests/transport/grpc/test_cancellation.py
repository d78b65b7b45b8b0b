"""A gRPC call that ends cancelled is logged and counted: its Server's error handler sees it.

A client that gives up, or whose deadline passes, cancels the handler's task;
the Server shows the ``error_handler`` a ``Cancelled`` (CANCELLED) or
``DeadlineExceeded`` (DEADLINE_EXCEEDED) error, so ``server_error_logging`` and
``server_error_metrics`` record it (with ``endpoint_errors=True``, as no
``call_logging`` / ``call_metrics`` layer is stacked here).  Real grpc.aio
server and client on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
import grpc.aio
import pytest
from google.protobuf.wrappers_pb2 import StringValue

from kitpy import Code, Context
from kitpy.context import ENDPOINT_ERROR
from kitpy.log import server_error_logging
from kitpy.metrics import server_error_metrics
from kitpy.testing import CapturedLogs, RequestMetrics

from .harness import PATH, echo_server, serving


class Seen:
    """The log and counter a service would have, and the calls its handler was shown."""

    def __init__(self) -> None:
        self.logs = CapturedLogs()
        self.metrics = RequestMetrics()
        self.calls = asyncio.Event()
        self.in_endpoint: list[bool | None] = []
        self.finished: list[Code] = []

    def error_handler(self) -> Callable[[Context, BaseException], None]:
        log = server_error_logging(self.logs.logger, endpoint_errors=True)
        count = server_error_metrics(self.metrics.requests, endpoint_errors=True)

        def handle(ctx: Context, exc: BaseException) -> None:
            self.in_endpoint.append(ctx.get(ENDPOINT_ERROR))
            log(ctx, exc)
            count(ctx, exc)
            self.calls.set()

        return handle


async def waits(ctx: Context, s: str) -> str:
    await asyncio.sleep(30)
    return s


@pytest.mark.parametrize(
    ("how", "code", "level"),
    [
        ("client cancels", Code.CANCELLED, "warning"),  # the caller's doing
        ("deadline passes", Code.DEADLINE_EXCEEDED, "error"),  # kitpy.errors.is_server_fault
    ],
)
async def test_a_cancelled_call_is_logged_and_counted(how: str, code: Code, level: str) -> None:
    seen = Seen()
    server = echo_server(
        waits,
        error_handler=seen.error_handler(),
        finalizer=[lambda ctx, final: seen.finished.append(final)],
    )
    async with serving(server) as running:
        call = running.channel.unary_unary(
            PATH,
            request_serializer=StringValue.SerializeToString,
            response_deserializer=StringValue.FromString,
        )
        timeout = 0.3 if how == "deadline passes" else 30
        pending = call(StringValue(value="x"), timeout=timeout)
        if how == "client cancels":
            await asyncio.sleep(0.3)  # the endpoint is running
            pending.cancel()
        with pytest.raises((grpc.aio.AioRpcError, asyncio.CancelledError)):
            await pending
        async with asyncio.timeout(5):
            await seen.calls.wait()
    assert seen.in_endpoint == [True]
    assert seen.finished == [code]
    line = seen.logs.assert_logged_once("request failed", code=code.name, method=PATH)
    assert line["log_level"] == level
    assert seen.metrics.count(method=PATH, code=code.name) == 1
