"""GrpcServer: health service, graceful stop, registration rules."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf.wrappers_pb2 import StringValue
from grpc_health.v1 import health_pb2

from kitpy import Context
from kitpy.errors import Cancelled, Unavailable
from kitpy.transport.grpc import METADATA, GrpcServer, MutableMetadata
from kitpy.transport.grpc.serve import _PRUNE_AT, _CallDetails, _Router
from tests.waiting import until

from .harness import PATH, SERVICE, echo_client, echo_server, serving

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def check(channel: grpc.aio.Channel, service: str = "") -> int:
    """One standard health Check call."""
    call = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    response = await call(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return response.status


def watch(
    channel: grpc.aio.Channel, service: str
) -> grpc.aio.UnaryStreamCall[health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse]:
    """A standard health Watch stream."""
    call: grpc.aio.UnaryStreamMultiCallable[
        health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse
    ] = channel.unary_stream(
        "/grpc.health.v1.Health/Watch",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    return call(health_pb2.HealthCheckRequest(service=service), timeout=10)


async def next_status(
    stream: grpc.aio.UnaryStreamCall[health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse],
) -> int:
    response = await stream.read()
    assert isinstance(response, health_pb2.HealthCheckResponse)
    return response.status


async def upper(ctx: Context, s: str) -> str:
    return s.upper()


async def test_health_reports_serving_for_overall_and_each_service() -> None:
    async with serving(echo_server(upper)) as running:
        assert await check(running.channel) == SERVING
        assert await check(running.channel, SERVICE) == SERVING
        assert running.server.services == (SERVICE,)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await check(running.channel, "no.such.Service")
    assert info.value.code() is grpc.StatusCode.NOT_FOUND


async def test_graceful_stop_goes_not_serving_and_lets_in_flight_call_finish() -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def endpoint(ctx: Context, s: str) -> str:
        if s == "slow":
            started.set()
            await release.wait()
        return s.upper()

    async with serving(echo_server(endpoint)) as running:
        client = echo_client(running.channel)
        stream = watch(running.channel, SERVICE)
        statuses: list[int] = []
        async with asyncio.timeout(10):
            statuses.append(await next_status(stream))
            in_flight = asyncio.create_task(client(Context(), "slow"))
            await started.wait()
            stop = asyncio.create_task(running.server.stop(grace=5.0, drain=1.0))
            statuses.append(await next_status(stream))
            stream.cancel()  # an open Watch stream is an in-flight call too
            # draining: health answers NOT_SERVING, calls are still served
            assert await check(running.channel, SERVICE) == NOT_SERVING
            assert await check(running.channel) == NOT_SERVING
            # once the drain pause is over, new calls are refused ...
            refused = None
            while refused is None:
                try:
                    await client(Context().with_timeout(2), "new")
                except Unavailable as err:
                    refused = err
                except Cancelled:  # arrived just as grpc.aio began to stop: it cancels those
                    pass
                await asyncio.sleep(0.02)
            # ... while the in-flight call is still running and then completes
            assert not in_flight.done()
            assert not stop.done()
            release.set()
            assert await in_flight == "SLOW"
            await stop
    assert statuses == [SERVING, NOT_SERVING]


async def test_grace_period_cancels_calls_that_run_too_long() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def stuck(ctx: Context, s: str) -> str:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return s

    async with serving(echo_server(stuck)) as running:
        call = asyncio.create_task(echo_client(running.channel)(Context(), "x"))
        async with asyncio.timeout(10):
            await started.wait()
            await running.server.stop(grace=0.1)
            await cancelled.wait()
            with pytest.raises(Unavailable):
                await call


async def test_add_service_after_start_is_refused() -> None:
    async with serving(echo_server(upper)) as running:
        with pytest.raises(RuntimeError, match="before starting"):
            running.server.add_service("x.Y", lambda servicer, server: None, None)


async def test_start_on_a_taken_port_fails_clearly() -> None:
    async with serving(echo_server(upper)) as running:
        other = GrpcServer()  # so_reuseport is off by default
        with pytest.raises(OSError, match=r"could not listen on 127\.0\.0\.1"):
            await other.start(f"127.0.0.1:{running.port}")


async def test_a_service_added_only_as_registered_methods_is_still_served() -> None:
    def add_registered_only(server_object: Any, server: Any) -> None:
        handler = grpc.unary_unary_rpc_method_handler(
            server_object,
            request_deserializer=StringValue.FromString,
            response_serializer=StringValue.SerializeToString,
        )
        server.add_registered_method_handlers(SERVICE, {"Call": handler})

    grpc_server = GrpcServer()
    grpc_server.add_service(SERVICE, add_registered_only, echo_server(upper))
    port = await grpc_server.start("127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            assert await echo_client(channel)(Context(), "only registered") == "ONLY REGISTERED"
            raw: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(PATH)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await raw(b"\xff\xff\xff", timeout=5)
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await grpc_server.stop(grace=0)


async def test_unknown_methods_are_unimplemented_and_not_remembered() -> None:
    async with serving(echo_server(upper)) as running:
        for n in range(50):
            for path in (f"/{SERVICE}/Missing{n}", f"/no.such.Service{n}/Call"):
                call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = running.channel.unary_unary(
                    path
                )
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await call(b"", timeout=5)
                assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED
        assert await echo_client(running.channel)(Context(), "still here") == "STILL HERE"
        # a client can send any number of names: only methods that exist are kept
        kept = set(running.server._router._found)
        assert PATH in kept
        assert not [m for m in kept if "Missing" in m or "no.such" in m]


async def seen_metadata(ctx: Context, s: str) -> str:
    """An endpoint replying with the metadata its Context holds (without user-agent)."""
    return repr(sorted((k, v) for k, v in ctx[METADATA].items() if k != "user-agent"))


def send_a_and_b(ctx: Context, outgoing: MutableMetadata) -> Context:
    outgoing.update({"a": "1", "b-bin": b"\x00"})
    return ctx


class AddsMetadata(grpc.aio.ServerInterceptor):
    """Hands the handler lookup call details with one more metadata pair."""

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        # grpc.aio accepts only its own call-details type here: make one of the same type
        make_details: Any = type(handler_call_details)
        details = make_details(
            handler_call_details.method,
            (*handler_call_details.invocation_metadata, ("added-by", "interceptor")),
        )
        return await continuation(details)


@pytest.mark.parametrize("interceptors", [(), (AddsMetadata(),)], ids=["plain", "interceptor"])
async def test_the_context_holds_the_metadata_the_client_sent(interceptors: Any) -> None:
    # GrpcServer hands the call the metadata grpc.aio built for the handler lookup; with
    # an interceptor in between, the call reads its own (as grpc's context would)
    async with serving(echo_server(seen_metadata), interceptors=interceptors) as running:
        client = echo_client(running.channel, before=[send_a_and_b])
        for _ in range(3):
            assert await client(Context(), "x") == repr([("a", "1"), ("b-bin", b"\x00")])


def list_services(target: str) -> list[str]:
    """The services a server lists through the standard reflection client (a blocking call)."""
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    with grpc.insecure_channel(target) as channel:
        return list(ProtoReflectionDescriptorDatabase(channel).get_services())


async def test_reflection_lists_the_services_health_and_itself() -> None:
    async with serving(echo_server(upper), reflection=True) as running:
        services = await asyncio.to_thread(list_services, running.target)
        # and the served methods are still served as before
        assert await echo_client(running.channel)(Context(), "hi") == "HI"
    assert sorted(services) == sorted(
        [SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"]
    )


async def test_reflection_is_off_by_default() -> None:
    async with serving(echo_server(upper)) as running:
        with pytest.raises(grpc.RpcError) as info:
            await asyncio.to_thread(list_services, running.target)
    error: Any = info.value  # a sync call's error: an RpcError that is also a grpc.Call
    assert error.code() is grpc.StatusCode.UNIMPLEMENTED


async def test_calls_in_flight_counts_running_calls_and_keeps_no_finished_one() -> None:
    """The server tracks calls to wait for them at stop, without keeping their tasks alive."""
    gate = asyncio.Event()
    tasks: list[weakref.ref[asyncio.Task[Any]]] = []

    async def held(ctx: Context, s: str) -> str:
        task = asyncio.current_task()
        assert task is not None
        tasks.append(weakref.ref(task))
        if s == "hold":
            await gate.wait()
        return s

    async with serving(echo_server(held)) as running:
        client = echo_client(running.channel)
        assert [await client(Context(), str(n)) for n in range(50)] == [str(n) for n in range(50)]
        holding = [asyncio.create_task(client(Context(), "hold")) for _ in range(3)]
        await until(lambda: running.server.calls_in_flight >= 3)
        assert running.server.calls_in_flight == 3
        gate.set()
        assert await asyncio.gather(*holding) == ["hold"] * 3
        await until(lambda: running.server.calls_in_flight == 0)
        gc.collect()
        assert len(tasks) == 53
        assert [ref for ref in tasks if ref() is not None] == []  # every finished call was freed


async def test_the_router_forgets_finished_calls_and_keeps_those_running() -> None:
    """Its list of calls is pruned as it grows: bounded however many calls have come and gone."""
    router = _Router(share_pairs=False)
    router.loop = asyncio.get_running_loop()
    gate = asyncio.Event()

    async def call(wait: bool) -> None:
        router.service(_CallDetails("/svc/Method"))
        if wait:
            await gate.wait()

    running = [asyncio.create_task(call(True)) for _ in range(3)]
    for _ in range(5 * _PRUNE_AT):
        await asyncio.create_task(call(False))
    assert sorted(map(id, router.in_flight())) == sorted(map(id, running))
    assert len(router._calls) < 2 * _PRUNE_AT
    gate.set()
    await asyncio.gather(*running)
    assert router.in_flight() == []
