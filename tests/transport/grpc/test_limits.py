"""GrpcServer's default limits against real attacks on a real socket (grpc.aio on 127.0.0.1).

* a burst of 2,000 concurrent calls on one connection, and 2,000 spread over 8
  connections, all complete: the server announces 256 streams per connection
  and the client queues the rest (without the limits grpc cancels part of a
  burst before any handler sees it -- shown here with a low pending limit);
* a request over 4 MiB is RESOURCE_EXHAUSTED;
* a ping flood on a raw HTTP/2 connection gets GOAWAY ``too_many_pings``;
* idle connections are closed, old ones replaced, calls in flight keep the grace.
"""

from __future__ import annotations

import asyncio
import struct
from collections import Counter
from collections.abc import Sequence
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf.wrappers_pb2 import StringValue

from kitpy import Code, Context
from kitpy.transport.grpc import PEER, GrpcServer

from .harness import PATH, echo_server, serving

BURST = 2000


class Gauge:
    """Counts the endpoint calls running at once, and the most seen."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0

    async def slow_echo(self, ctx: Context, s: str) -> str:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(0.05)
        finally:
            self.now -= 1
        return s


def stub(channel: grpc.aio.Channel) -> grpc.aio.UnaryUnaryMultiCallable[StringValue, StringValue]:
    return channel.unary_unary(
        PATH,
        request_serializer=StringValue.SerializeToString,
        response_deserializer=StringValue.FromString,
    )


async def burst(channels: Sequence[grpc.aio.Channel], n: int) -> Counter[str]:
    """``n`` concurrent calls spread over ``channels``; the count of each status code."""
    calls = [stub(channel) for channel in channels]
    codes: Counter[str] = Counter()

    async def one(i: int) -> None:
        try:
            await calls[i % len(calls)](StringValue(value=str(i)), timeout=60)
            codes["OK"] += 1
        except grpc.aio.AioRpcError as err:
            codes[err.code().name] += 1

    async with asyncio.timeout(90):
        await asyncio.gather(*(one(i) for i in range(n)))
    return codes


def finished(codes: list[Code]) -> Counter[str]:
    return Counter(code.name for code in codes)


async def test_a_burst_on_one_connection_completes_with_no_call_cancelled() -> None:
    gauge, seen = Gauge(), list[Code]()
    server = echo_server(gauge.slow_echo, finalizer=[lambda ctx, code: seen.append(code)])
    async with serving(server) as running:
        codes = await burst([running.channel], BURST)
    assert codes == {"OK": BURST}
    assert finished(seen) == {"OK": BURST}
    assert 1 < gauge.most <= 256  # the announced limit held; the client queued the rest


async def test_a_burst_over_many_connections_completes_with_no_call_cancelled() -> None:
    gauge = Gauge()
    async with serving(echo_server(gauge.slow_echo)) as running:
        # a local subchannel pool gives each channel its own connection
        channels = [
            grpc.aio.insecure_channel(
                running.target, options=[("grpc.use_local_subchannel_pool", 1)]
            )
            for _ in range(8)
        ]
        try:
            codes = await burst(channels, BURST)
        finally:
            for channel in channels:
                await channel.close()
    assert codes == {"OK": BURST}
    assert gauge.most > 256  # several connections, each with its own 256


async def test_calls_beyond_the_pending_limit_are_cancelled_before_any_handler() -> None:
    # What grpc does to a burst when its pending queue is short (its own default is
    # 1,000..3,000 and cancelled ~200 of 2,000 here): CANCELLED, and no handler, error
    # handler or finalizer of ours ever sees those calls -- hence the default of 10,000.
    gauge, seen, errors = Gauge(), list[Code](), list[BaseException]()
    server = echo_server(
        gauge.slow_echo,
        finalizer=[lambda ctx, code: seen.append(code)],
        error_handler=lambda ctx, exc: errors.append(exc),
    )
    async with serving(server, max_concurrent_streams=None, max_pending_calls=50) as running:
        codes = await burst([running.channel], BURST)
    assert codes["CANCELLED"] > 0, codes
    assert codes["OK"] + codes["CANCELLED"] == BURST, codes
    assert finished(seen) == {"OK": codes["OK"]}
    assert errors == []


async def test_the_callers_options_win_over_the_keywords() -> None:
    gauge = Gauge()
    options = [("grpc.max_concurrent_streams", 10)]
    async with serving(echo_server(gauge.slow_echo), options=options) as running:
        assert ("grpc.max_concurrent_streams", 10) in running.server.options
        assert ("grpc.max_concurrent_streams", 256) not in running.server.options
        codes = await burst([running.channel], 200)
    assert codes == {"OK": 200}
    assert gauge.most == 10


async def test_a_request_over_the_message_limit_is_resource_exhausted() -> None:
    async def size(ctx: Context, s: str) -> str:
        return str(len(s))

    big = StringValue(value="x" * (4 << 20))
    async with serving(echo_server(size)) as running:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub(running.channel)(big, timeout=10)
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        ok = await stub(running.channel)(StringValue(value="x" * (1 << 20)), timeout=10)
        assert ok.value == str(1 << 20)
    async with serving(echo_server(size), max_receive_message_length=8 << 20) as running:
        assert (await stub(running.channel)(big, timeout=10)).value == str(4 << 20)


# -- a raw HTTP/2 client: what a hostile peer sends -------------------------------------

SETTINGS, PING, GOAWAY = 0x4, 0x6, 0x7
ACK = 0x1
MAX_CONCURRENT_STREAMS = 0x3
ENHANCE_YOUR_CALM = 0xB


def frame(kind: int, flags: int = 0, payload: bytes = b"") -> bytes:
    """One HTTP/2 frame on stream 0."""
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags, 0, 0, 0, 0]) + payload


async def ping_flood(port: int, pings: int) -> tuple[dict[int, int], tuple[int, bytes] | None]:
    """Send ``pings`` PINGs with no call; the server's SETTINGS and its GOAWAY (or None)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    settings: dict[int, int] = {}
    goaway: tuple[int, bytes] | None = None
    try:
        writer.write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(SETTINGS))

        async def read() -> None:
            nonlocal goaway
            while True:
                head = await reader.readexactly(9)
                payload = await reader.readexactly(int.from_bytes(head[:3], "big"))
                kind, flags = head[3], head[4]
                if kind == SETTINGS and not flags & ACK:
                    for i in range(0, len(payload), 6):
                        key, value = struct.unpack(">HI", payload[i : i + 6])
                        settings[key] = value
                    writer.write(frame(SETTINGS, ACK))
                elif kind == GOAWAY:
                    goaway = (int.from_bytes(payload[4:8], "big"), payload[8:])
                    return

        reading = asyncio.create_task(read())
        for i in range(pings):
            writer.write(frame(PING, payload=i.to_bytes(8, "big")))
            await asyncio.sleep(0.01)
        try:
            async with asyncio.timeout(3):
                await reading
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            reading.cancel()
    finally:
        writer.close()
    return settings, goaway


async def test_a_ping_flood_gets_goaway_too_many_pings() -> None:
    async with serving(echo_server(Gauge().slow_echo)) as running:
        settings, goaway = await ping_flood(running.port, pings=10)
    assert settings[MAX_CONCURRENT_STREAMS] == 256
    assert goaway == (ENHANCE_YOUR_CALM, b"too_many_pings")


async def test_pings_are_tolerated_when_the_strikes_are_unlimited() -> None:
    async with serving(echo_server(Gauge().slow_echo), max_ping_strikes=0) as running:
        _, goaway = await ping_flood(running.port, pings=10)
    assert goaway is None


# -- connection lifetime ---------------------------------------------------------------


async def test_an_idle_connection_is_closed_and_the_client_reconnects() -> None:
    peers: list[str] = []

    async def peer(ctx: Context, s: str) -> str:
        peers.append(ctx[PEER])
        return s

    async with serving(echo_server(peer), max_connection_idle=0.2) as running:
        call = stub(running.channel)
        await call(StringValue(value="a"), timeout=5)
        state = running.channel.get_state()
        async with asyncio.timeout(5):  # GOAWAY: the channel goes IDLE
            while state is not grpc.ChannelConnectivity.IDLE:
                await running.channel.wait_for_state_change(state)
                state = running.channel.get_state()
        await call(StringValue(value="b"), timeout=5)
    assert len(peers) == 2
    assert peers[0] != peers[1]


async def test_an_old_connection_is_replaced_and_its_calls_get_the_grace() -> None:
    peers: list[str] = []

    async def slow_peer(ctx: Context, s: str) -> str:
        peers.append(ctx[PEER])
        await asyncio.sleep(float(s))
        return s

    options: dict[str, Any] = {"max_connection_age": 0.2, "max_connection_age_grace": 5.0}
    async with serving(echo_server(slow_peer), **options) as running:
        call = stub(running.channel)
        assert (await call(StringValue(value="0.8"), timeout=5)).value == "0.8"  # outlived age
        await call(StringValue(value="0"), timeout=5)
    assert len(peers) == 2
    assert peers[0] != peers[1]  # the second call had a new connection


async def test_a_call_outliving_the_age_grace_is_unavailable() -> None:
    async def slow(ctx: Context, s: str) -> str:
        await asyncio.sleep(float(s))
        return s

    options: dict[str, Any] = {"max_connection_age": 0.2, "max_connection_age_grace": 0.2}
    async with serving(echo_server(slow), **options) as running:
        with pytest.raises(grpc.aio.AioRpcError) as cut:
            await stub(running.channel)(StringValue(value="3"), timeout=5)
    assert cut.value.code() is grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    "options",
    [
        {"max_concurrent_streams": 0},
        {"max_pending_calls": 0},
        {"max_receive_message_length": 0},
        {"max_ping_strikes": -1},
        {"min_ping_interval": -1.0},
        {"max_connection_idle": -1.0},
    ],
)
def test_bad_limits_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(options))):
        GrpcServer(**options)
