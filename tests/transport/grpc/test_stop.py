"""GrpcServer.stop loses no call: a real grpc.aio server on 127.0.0.1 and real clients.

While it stops, calls in flight finish; new calls get UNAVAILABLE with
:data:`REFUSED_MESSAGE` (safe to retry: never started), shown to the
``error_handler`` first; nothing ends CANCELLED; an open health Watch ends at
once instead of holding the grace period.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf.wrappers_pb2 import StringValue
from grpc_health.v1 import health_pb2

from kitpy import OPERATION, REQUEST_ID, Code, Context
from kitpy.context import ENDPOINT_ERROR
from kitpy.errors import Unavailable
from kitpy.transport.grpc.serve import REFUSED_MESSAGE

from .harness import PATH, echo_server, serving

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def stub(channel: grpc.aio.Channel) -> grpc.aio.UnaryUnaryMultiCallable[StringValue, StringValue]:
    return channel.unary_unary(
        PATH,
        request_serializer=StringValue.SerializeToString,
        response_deserializer=StringValue.FromString,
    )


async def send(
    call: grpc.aio.UnaryUnaryMultiCallable[StringValue, StringValue], text: str, **options: Any
) -> str:
    """One call (a coroutine, so a task can run it); the reply's text."""
    reply = await call(StringValue(value=text), **options)
    return reply.value


async def watch_until_it_ends(
    channel: grpc.aio.Channel, service: str = ""
) -> tuple[list[int], Any]:
    """Read a health Watch stream to its end: the statuses sent and the final code."""
    watch: grpc.aio.UnaryStreamMultiCallable[
        health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse
    ] = channel.unary_stream(
        "/grpc.health.v1.Health/Watch",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    call = watch(health_pb2.HealthCheckRequest(service=service), timeout=30)
    statuses = [response.status async for response in call]
    return statuses, await call.code()


class Refusals:
    """An error handler for GrpcServer that keeps what it was shown."""

    def __init__(self) -> None:
        self.seen: list[tuple[Context, BaseException]] = []

    def __call__(self, ctx: Context, exc: BaseException) -> None:
        self.seen.append((ctx, exc))


async def test_an_open_health_watch_ends_at_once_instead_of_holding_the_grace() -> None:
    async def echo(ctx: Context, s: str) -> str:
        return s

    async with serving(echo_server(echo)) as running:
        watching = asyncio.create_task(watch_until_it_ends(running.channel))
        await asyncio.sleep(0.2)  # the Watch is open and has sent SERVING
        started = time.monotonic()
        async with asyncio.timeout(5):
            await running.server.stop(grace=30.0)
            statuses, code = await watching
        took = time.monotonic() - started
    assert statuses == [SERVING, NOT_SERVING]
    assert code is grpc.StatusCode.OK
    assert took < 2.0  # not the 30 s grace


async def test_a_watch_started_while_draining_gets_not_serving_and_ends() -> None:
    async def echo(ctx: Context, s: str) -> str:
        return s

    async with serving(echo_server(echo)) as running:
        stopping = asyncio.create_task(running.server.stop(grace=5.0, drain=1.0))
        await asyncio.sleep(0.2)  # draining: health says NOT_SERVING, calls are served
        async with asyncio.timeout(5):
            assert await watch_until_it_ends(running.channel) == ([NOT_SERVING], grpc.StatusCode.OK)
            assert (
                await stub(running.channel)(StringValue(value="still"), timeout=5)
            ).value == "still"
            await stopping


async def test_a_call_in_flight_finishes_and_a_new_one_is_refused_retryably() -> None:
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[Code] = []

    async def held(ctx: Context, s: str) -> str:
        started.set()
        await release.wait()
        return s.upper()

    refusals = Refusals()
    server = echo_server(held, finalizer=[lambda ctx, code: finished.append(code)])
    async with serving(server, error_handler=refusals) as running:
        call = stub(running.channel)
        in_flight = asyncio.create_task(send(call, "in flight", timeout=30))
        async with asyncio.timeout(10):
            await started.wait()
            stopping = asyncio.create_task(running.server.stop(grace=30.0))
            await asyncio.sleep(0.1)
            # refused, and answered before its 1 s deadline (UNAVAILABLE, not DEADLINE_EXCEEDED)
            late = call(StringValue(value="late"), timeout=1, metadata=(("x-request-id", "r-7"),))
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await late
            assert not in_flight.done()
            release.set()
            assert await in_flight == "IN FLIGHT"
            await stopping
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    assert refused.value.details() == REFUSED_MESSAGE
    assert ("x-request-id", "r-7") in tuple(refused.value.trailing_metadata() or ())
    assert finished == [Code.OK]  # the refused call never reached the endpoint
    [(ctx, exc)] = refusals.seen
    assert isinstance(exc, Unavailable)
    assert ctx[OPERATION] == PATH
    assert ctx[REQUEST_ID] == "r-7"


async def test_a_steady_load_loses_no_call_and_none_is_cancelled() -> None:
    finished: list[Code] = []

    async def brief(ctx: Context, s: str) -> str:
        await asyncio.sleep(0.02)
        return s

    refusals = Refusals()
    server = echo_server(brief, finalizer=[lambda ctx, code: finished.append(code)])
    outcomes: Counter[str] = Counter()
    async with serving(server, error_handler=refusals) as running:
        call = stub(running.channel)
        stopped = asyncio.Event()

        async def caller() -> None:  # a closed loop: the next call when the last one ends
            while not stopped.is_set():
                try:
                    await call(StringValue(value="x"), timeout=10)
                    outcomes["OK"] += 1
                except grpc.aio.AioRpcError as err:
                    refused = err.details() == REFUSED_MESSAGE
                    outcomes[f"{err.code().name}{' refused' if refused else ''}"] += 1
                    await asyncio.sleep(0.01)

        callers = [asyncio.create_task(caller()) for _ in range(32)]
        try:
            async with asyncio.timeout(20):
                await asyncio.sleep(0.5)
                before = outcomes["OK"]
                await running.server.stop(grace=5.0)
                await asyncio.sleep(0.3)  # the callers now find nobody listening
                stopped.set()
                await asyncio.gather(*callers)
        finally:
            for task in callers:
                task.cancel()
    assert before > 0
    assert set(outcomes) <= {"OK", "UNAVAILABLE refused", "UNAVAILABLE"}, outcomes
    assert outcomes["UNAVAILABLE refused"] > 0, outcomes
    assert Counter(code.name for code in finished) == {"OK": outcomes["OK"]}  # none lost
    assert len(refusals.seen) == outcomes["UNAVAILABLE refused"]  # each one logged, counted


async def test_a_call_running_past_the_grace_is_cancelled_and_seen() -> None:
    started = asyncio.Event()
    errors: list[tuple[bool | None, BaseException]] = []

    async def stuck(ctx: Context, s: str) -> str:
        started.set()
        await asyncio.sleep(30)
        return s

    server = echo_server(
        stuck, error_handler=lambda ctx, exc: errors.append((ctx.get(ENDPOINT_ERROR), exc))
    )
    async with serving(server) as running:
        call = asyncio.create_task(send(stub(running.channel), "x", timeout=30))
        async with asyncio.timeout(10):
            await started.wait()
            await running.server.stop(grace=0.2)
            with pytest.raises(grpc.aio.AioRpcError) as cut:
                await call
    assert cut.value.code() is grpc.StatusCode.UNAVAILABLE
    [(in_endpoint, exc)] = errors
    assert in_endpoint is True
    assert getattr(exc, "code", None) is Code.CANCELLED
