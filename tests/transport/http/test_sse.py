"""Server-sent events: SseServer, sse_events / SseClient and the parser, over real sockets.

Real aiohttp servers on 127.0.0.1 (port 0, served by ``start_app``), read with
a plain aiohttp session, kitpy's SSE client, or a raw socket where a client
has to misbehave (stop reading).  Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import msgspec
import pytest
from aiohttp import web
from yarl import URL

from kitpy import OPERATION, REQUEST_ID, Context
from kitpy.context import ENDPOINT_ERROR
from kitpy.endpoint.stream import close_stream, collect, lift, messages, server_stream
from kitpy.errors import (
    Cancelled,
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    KitError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
    Unknown,
)
from kitpy.ratelimit import ConcurrencyLimiter, concurrency_limit
from kitpy.transport.http import (
    LAST_EVENT_ID,
    Event,
    OutgoingRequest,
    ServerOptions,
    SseClient,
    SseParser,
    SseServer,
    add_fallback,
    add_routes,
    decode_json,
    decode_json_event,
    encode_json_event,
    sse_events,
    start_app,
)
from kitpy.transport.http.sse import encode_data, stream_error

from .conftest import ServeApp

WAIT = 5.0  # the bound on any one wait in these tests
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Tick:
    n: int


@dataclass(frozen=True, slots=True)
class Ticks:
    count: int


async def decode_ticks(ctx: Context, request: web.Request) -> Ticks:
    """``?count=N`` (default 3); a count that is not a number is a 400."""
    raw = request.query.get("count", "3")
    if not raw.isdigit():
        raise InvalidArgument(f"count must be a number, got {raw[:20]!r}")
    return Ticks(int(raw))


def encode_tick(ctx: Context, tick: Tick) -> Event:
    return Event(msgspec.json.encode(tick).decode(), event="tick", id=str(tick.n))


def encode_ticks(ctx: Context, out: OutgoingRequest, request: Ticks) -> None:
    out.url = out.url.with_query(count=str(request.count))


@server_stream
async def ticks(ctx: Context, request: Ticks) -> AsyncIterator[Tick]:
    for n in range(request.count):
        yield Tick(n)


class Finals:
    """A finalizer that records ``(status, size)`` and an event set when it ran."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []
        self.ran = asyncio.Event()

    def __call__(self, ctx: Context, status: int, size: int) -> None:
        self.calls.append((status, size))
        self.ran.set()

    async def wait(self) -> tuple[int, int]:
        async with asyncio.timeout(WAIT):
            await self.ran.wait()
        assert len(self.calls) == 1
        return self.calls[0]


async def serve(serve_app: ServeApp, routes: dict[str, Any], **options: Any) -> URL:
    app = web.Application()
    add_routes(app, routes)
    add_fallback(app)
    return await serve_app(app, **options)


async def drain(stream: AsyncIterator[T], into: list[T] | None = None) -> list[T]:
    """Read ``stream`` to its end within WAIT, then close it; each item also goes ``into``."""
    got: list[T] = [] if into is None else into
    try:
        async with asyncio.timeout(WAIT):
            async for item in stream:
                got.append(item)
    finally:
        await close_stream(stream)
    return got


async def read_all(session: aiohttp.ClientSession, url: URL, **kwargs: Any) -> bytes:
    async with asyncio.timeout(WAIT), session.get(url, **kwargs) as resp:
        assert resp.status == 200
        return await resp.read()


# -- the stream ------------------------------------------------------------------------


async def test_events_arrive_in_order_with_ids_names_and_the_stream_headers(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    finals = Finals()
    server = SseServer(ticks, decode_ticks, encode_tick, finalizer=[finals])
    url = await serve(serve_app, {"GET /ticks": server})
    async with asyncio.timeout(WAIT), session.get(url / "ticks", params={"count": "3"}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/event-stream"
        assert resp.headers["Cache-Control"] == "no-cache"
        assert resp.headers["X-Accel-Buffering"] == "no"
        assert resp.headers["X-Request-Id"]
        body = await resp.read()
    assert body == (
        b'id: 0\nevent: tick\ndata: {"n":0}\n\n'
        b'id: 1\nevent: tick\ndata: {"n":1}\n\n'
        b'id: 2\nevent: tick\ndata: {"n":2}\n\n'
    )
    assert await finals.wait() == (200, len(body))  # a stream that ended by itself

    async with contextlib.aclosing(
        sse_events(session, (url / "ticks").with_query(count="4"))
    ) as events:
        got = [event async for event in events]
    assert [(e.event, e.id, json.loads(e.data)) for e in got] == [
        ("tick", str(n), {"n": n}) for n in range(4)
    ]


async def test_the_sse_client_is_a_stream_endpoint_decoding_each_event(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    seen: list[tuple[str, str, float | None]] = []

    @server_stream
    async def recorded(ctx: Context, request: Ticks) -> AsyncIterator[Tick]:
        seen.append((ctx[OPERATION], ctx[REQUEST_ID], ctx.time_remaining()))
        for n in range(request.count):
            yield Tick(n)

    url = await serve(serve_app, {"GET /ticks": SseServer(recorded, decode_ticks, encode_tick)})
    client: SseClient[Ticks, Tick] = SseClient(
        session, "GET", url / "ticks", encode_ticks, decode_json_event(Tick)
    )
    ctx = Context().with_value(REQUEST_ID, "req-7").with_timeout(WAIT)
    async with asyncio.timeout(WAIT):
        got = await collect(client(ctx, messages(Ticks(5))))
    assert got == [Tick(n) for n in range(5)]
    [(operation, request_id, remaining)] = seen
    assert operation == "GET /ticks"  # the Context keys of the HTTP Server
    assert request_id == "req-7"  # the call's request id and deadline travel
    assert remaining is not None
    assert 0 < remaining <= WAIT


async def test_a_json_body_can_carry_the_request(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    url = await serve(
        serve_app, {"POST /ticks": SseServer(ticks, decode_json(Ticks), encode_json_event)}
    )
    events = sse_events(session, url / "ticks", method="POST", json=Ticks(2))
    assert [event.data for event in await drain(events)] == ['{"n":0}', '{"n":1}']
    with pytest.raises(InvalidArgument, match="count"):  # decode_json's 400, before the stream
        await drain(sse_events(session, url / "ticks", method="POST", json={"count": "x"}))


async def test_heartbeats_fill_the_silence_and_start_a_silent_stream(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    @server_stream
    async def slow(ctx: Context, request: Ticks) -> AsyncIterator[Tick]:
        await asyncio.sleep(0.3)  # silent from the start: the first heartbeat starts the stream
        yield Tick(0)
        await asyncio.sleep(0.3)
        yield Tick(1)

    server = SseServer(slow, decode_ticks, encode_json_event, heartbeat=0.05)
    url = await serve(serve_app, {"GET /slow": server})
    async with asyncio.timeout(WAIT), session.get(url / "slow") as resp:
        head = await resp.content.readuntil(b"\n\n")
        assert head == b": ping\n\n"  # the stream started before the endpoint's first event
        body = head + await resp.read()
    assert body.count(b": ping\n\n") >= 6  # ~0.6 s of silence at 0.05 s
    events = SseParser().feed(body)
    assert [event.data for event in events] == ['{"n":0}', '{"n":1}']  # comments are not events
    assert body.endswith(b'data: {"n":1}\n\n')


async def test_last_event_id_reaches_the_endpoint(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    @server_stream
    async def resume(ctx: Context, request: Ticks) -> AsyncIterator[Tick]:
        start = int(ctx.get(LAST_EVENT_ID, "-1")) + 1
        for n in range(start, start + request.count):
            yield Tick(n)

    url = await serve(serve_app, {"GET /ticks": SseServer(resume, decode_ticks, encode_tick)})
    async with contextlib.aclosing(
        sse_events(session, (url / "ticks").with_query(count="2"), last_event_id="41")
    ) as events:
        assert [event.id async for event in events] == ["42", "43"]

    def resume_after(ctx: Context, headers: Any) -> Context:
        headers["Last-Event-ID"] = "7"
        return ctx

    client: SseClient[Ticks, Tick] = SseClient(
        session, "GET", url / "ticks", encode_ticks, decode_json_event(Tick), before=[resume_after]
    )
    async with asyncio.timeout(WAIT):
        assert await collect(client(Context(), messages(Ticks(1)))) == [Tick(8)]
    async with contextlib.aclosing(
        sse_events(session, (url / "ticks").with_query(count="1"))
    ) as events:
        assert [event.id async for event in events] == ["0"]  # no header: absent from the Context


async def test_a_client_that_goes_away_closes_the_endpoint_and_the_finalizer_says_499(
    serve_app: ServeApp, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    cleaned = asyncio.Event()
    finals = Finals()
    errors: list[BaseException] = []

    @server_stream
    async def forever(ctx: Context, request: Ticks) -> AsyncIterator[Tick]:
        try:
            yield Tick(0)
            yield Tick(1)
            await asyncio.Event().wait()  # silent until the client is gone
        finally:
            cleaned.set()

    server = SseServer(
        forever,
        decode_ticks,
        heartbeat=0.05,
        finalizer=[finals],
        error_handler=lambda ctx, exc: errors.append(exc),
    )
    url = await serve(serve_app, {"GET /forever": server})
    client_finals: list[BaseException | None] = []
    client: SseClient[Ticks, Tick] = SseClient(
        session,
        "GET",
        url / "forever",
        encode_ticks,
        decode_json_event(Tick),
        finalizer=[lambda ctx, err: client_finals.append(err)],
    )
    caplog.set_level(logging.DEBUG)
    stream = client(Context(), messages(Ticks(1)))
    async with asyncio.timeout(WAIT):
        assert await anext(stream) == Tick(0)
        await close_stream(stream)  # the connection closes: the next heartbeat fails
        await cleaned.wait()
    status, _ = await finals.wait()
    assert status == 499
    assert errors == []  # a client leaving is not an error
    assert len(client_finals) == 1
    assert isinstance(client_finals[0], Cancelled)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


# -- errors ----------------------------------------------------------------------------


async def test_refused_before_the_stream_is_a_json_error_and_the_endpoint_never_runs(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    calls: list[str] = []

    @server_stream
    async def guarded(ctx: Context, request: Ticks) -> AsyncIterator[Tick]:
        calls.append("endpoint")
        yield Tick(0)

    async def authenticate(ctx: Context) -> Context:
        raise Unauthenticated("no token")

    async def decode(ctx: Context, request: web.Request) -> Ticks:
        calls.append("decode")
        return await decode_ticks(ctx, request)

    finals = Finals()
    server = SseServer(guarded, decode, authenticate=authenticate, finalizer=[finals])
    url = await serve(serve_app, {"GET /guarded": server})
    async with asyncio.timeout(WAIT), session.get(url / "guarded") as resp:
        assert resp.status == 401
        assert resp.content_type == "application/json"
        assert resp.headers["X-Request-Id"]
        assert await resp.json() == {"error": {"code": "UNAUTHENTICATED", "message": "no token"}}
    assert calls == []  # refused before its body was read, and before the endpoint ran
    assert (await finals.wait())[0] == 401
    client: SseClient[Ticks, Tick] = SseClient(
        session, "GET", url / "guarded", encode_ticks, decode_json_event(Tick)
    )
    with pytest.raises(Unauthenticated, match="no token"):
        async with asyncio.timeout(WAIT):
            await collect(client(Context(), messages(Ticks(1))))


async def test_bad_input_is_a_400_json_error(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    url = await serve(serve_app, {"GET /ticks": SseServer(ticks, decode_ticks, encode_tick)})
    async with asyncio.timeout(WAIT), session.get((url / "ticks").with_query(count="many")) as resp:
        assert resp.status == 400
        body = await resp.json()
    assert body["error"]["code"] == "INVALID_ARGUMENT"
    assert "count must be a number" in body["error"]["message"]
    headers = {"X-Timeout-Ms": "soon"}
    async with asyncio.timeout(WAIT), session.get(url / "ticks", headers=headers) as resp:
        assert resp.status == 400
        assert "X-Timeout-Ms" in (await resp.json())["error"]["message"]
    with pytest.raises(InvalidArgument, match="count must be a number"):
        async with contextlib.aclosing(
            sse_events(session, (url / "ticks").with_query(count="x"))
        ) as events:
            await anext(events)


async def test_an_endpoint_refusing_before_its_first_event_gets_its_status(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    @server_stream
    async def private(ctx: Context, request: Ticks) -> AsyncIterator[Tick]:
        if request.count >= 0:  # always: the stream is refused before its first event
            raise PermissionDenied("not your ticks")
        yield Tick(0)

    handled: list[tuple[bool | None, BaseException]] = []
    server = SseServer(
        private,
        decode_ticks,
        error_handler=lambda ctx, exc: handled.append((ctx.get(ENDPOINT_ERROR), exc)),
    )
    url = await serve(serve_app, {"GET /private": server})
    async with asyncio.timeout(WAIT), session.get(url / "private") as resp:
        assert resp.status == 403
        assert (await resp.json())["error"]["code"] == "PERMISSION_DENIED"
    assert [(seen, type(exc)) for seen, exc in handled] == [(True, PermissionDenied)]


async def test_a_kit_error_mid_stream_is_an_error_event_and_the_client_raises_the_same(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    @server_stream
    async def runs_out(ctx: Context, request: Ticks) -> AsyncIterator[Tick]:
        yield Tick(0)
        yield Tick(1)
        raise NotFound("no tick 2", {"last": 1})

    handled: list[tuple[bool | None, BaseException]] = []
    finals = Finals()
    server = SseServer(
        runs_out,
        decode_ticks,
        encode_tick,
        error_handler=lambda ctx, exc: handled.append((ctx.get(ENDPOINT_ERROR), exc)),
        finalizer=[finals],
    )
    url = await serve(serve_app, {"GET /ticks": server})
    body = await read_all(session, url / "ticks")
    assert body.endswith(
        b"event: error\n"
        b'data: {"error":{"code":"NOT_FOUND","message":"no tick 2","details":{"last":1}}}\n\n'
    )
    assert await finals.wait() == (404, len(body))  # the real code, though the wire said 200
    assert [(seen, type(exc)) for seen, exc in handled] == [(True, NotFound)]

    client: SseClient[Ticks, Tick] = SseClient(
        session, "GET", url / "ticks", encode_ticks, decode_json_event(Tick)
    )
    got: list[Tick] = []
    with pytest.raises(NotFound) as info:
        await drain(client(Context(), messages(Ticks(1))), got)
    assert got == [Tick(0), Tick(1)]
    assert info.value.message == "no tick 2"
    assert info.value.details == {"last": 1}


async def test_an_unexpected_exception_mid_stream_is_unknown_and_leaks_nothing(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    @server_stream
    async def leaky(ctx: Context, request: Ticks) -> AsyncIterator[Tick]:
        yield Tick(0)
        raise ValueError("db password is hunter2")

    handled: list[BaseException] = []
    finals = Finals()
    server = SseServer(
        leaky,
        decode_ticks,
        error_handler=lambda ctx, exc: handled.append(exc),
        finalizer=[finals],
    )
    url = await serve(serve_app, {"GET /leaky": server})
    body = await read_all(session, url / "leaky")
    assert b"hunter2" not in body
    assert b'event: error\ndata: {"error":{"code":"UNKNOWN","message":"unknown"}}\n\n' in body
    assert [type(exc) for exc in handled] == [ValueError]  # the handler sees the real error
    assert (await finals.wait())[0] == 500
    with pytest.raises(Unknown) as info:
        await drain(sse_events(session, url / "leaky"))
    assert "hunter2" not in info.value.message


async def test_an_event_that_cannot_be_encoded_is_internal(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    def encode_badly(ctx: Context, tick: Tick) -> Event:
        return Event("x", event="error" if tick.n else "tick")  # "error" is the stream's

    url = await serve(serve_app, {"GET /ticks": SseServer(ticks, decode_ticks, encode_badly)})
    body = await read_all(session, url / "ticks")
    assert body == (
        b"event: tick\ndata: x\n\n"
        b'event: error\ndata: {"error":{"code":"INTERNAL","message":"could not encode the event"}}'
        b"\n\n"
    )


async def test_the_deadline_covers_the_whole_stream(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    cleaned = asyncio.Event()
    finals = Finals()
    handled: list[tuple[bool | None, BaseException]] = []

    @server_stream
    async def endless(ctx: Context, request: Ticks) -> AsyncIterator[Tick]:
        try:
            n = 0
            while True:
                yield Tick(n)
                n += 1
                await asyncio.sleep(0.02)
        finally:
            cleaned.set()

    server = SseServer(
        endless,
        decode_ticks,
        finalizer=[finals],
        error_handler=lambda ctx, exc: handled.append((ctx.get(ENDPOINT_ERROR), exc)),
    )
    url = await serve(serve_app, {"GET /endless": server})
    started = time.monotonic()
    events: list[Event] = []
    stream = sse_events(session, url / "endless", headers={"X-Timeout-Ms": "300"})
    with pytest.raises(DeadlineExceeded, match="deadline exceeded"):  # the server's error event
        await drain(stream, events)
    assert 0.25 < time.monotonic() - started < 2.0
    assert len(events) >= 5
    async with asyncio.timeout(WAIT):
        await cleaned.wait()
    assert (await finals.wait())[0] == 504
    assert [(seen, type(exc)) for seen, exc in handled] == [(False, DeadlineExceeded)]

    client: SseClient[Ticks, Tick] = SseClient(
        session, "GET", url / "endless", encode_ticks, decode_json_event(Tick)
    )
    with pytest.raises(DeadlineExceeded):  # the client's Context deadline travels
        async with asyncio.timeout(WAIT):
            await collect(client(Context().with_timeout(0.2), messages(Ticks(1))))


# -- flow control and the server's hardening -------------------------------------------


async def _stalled_client(url: URL, path: str, read: int) -> socket.socket:
    """A raw client that sends the request, reads ``read`` bytes and then stops reading."""
    assert url.host is not None
    assert url.port is not None
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)  # small: a tighter bound
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (url.host, url.port))
    await loop.sock_sendall(sock, f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    got = 0
    while got < read:
        got += len(await loop.sock_recv(sock, read - got))
    return sock


KIB = "x" * 1000


async def test_a_client_that_stops_reading_stops_the_endpoint(serve_app: ServeApp) -> None:
    produced = 0

    @server_stream
    async def firehose(ctx: Context, request: Ticks) -> AsyncIterator[str]:
        nonlocal produced
        while True:  # as fast as it is let: ~1 KiB events
            produced += 1
            yield KIB

    server = SseServer(firehose, decode_ticks, heartbeat=None)
    url = await serve(serve_app, {"GET /firehose": server})
    sock = await _stalled_client(url, "/firehose", read=8 * 1024)  # a few events, then nothing
    try:
        async with asyncio.timeout(WAIT):
            await asyncio.sleep(1.0)
            after_a_second = produced
            await asyncio.sleep(0.5)
        assert produced == after_a_second  # stalled: nothing more produced
        # what the socket buffers hold, plus aiohttp's and two in hand; unbounded would be ~10^5
        assert after_a_second < 20_000, after_a_second
        print(f"\nevents produced for a client that stopped reading: {after_a_second}")
    finally:
        sock.close()


async def test_a_client_that_takes_nothing_for_write_timeout_is_dropped(
    serve_app: ServeApp, caplog: pytest.LogCaptureFixture
) -> None:
    cleaned = asyncio.Event()
    finals = Finals()

    @server_stream
    async def firehose(ctx: Context, request: Ticks) -> AsyncIterator[str]:
        try:
            while True:
                yield KIB
        finally:
            cleaned.set()

    server = SseServer(firehose, decode_ticks, write_timeout=0.3, finalizer=[finals])
    url = await serve(serve_app, {"GET /firehose": server})
    caplog.set_level(logging.DEBUG)
    sock = await _stalled_client(url, "/firehose", read=1024)
    try:
        async with asyncio.timeout(WAIT):
            await cleaned.wait()
        assert (await finals.wait())[0] == 499
        await asyncio.sleep(0.1)  # aiohttp finishes the response it was handed
    finally:
        sock.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_the_idle_timeout_does_not_cut_an_active_stream(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    @server_stream
    async def patient(ctx: Context, request: Ticks) -> AsyncIterator[Tick]:
        for n in range(request.count):
            await asyncio.sleep(0.3)  # each silence longer than the idle timeout
            yield Tick(n)

    server = SseServer(patient, decode_ticks, heartbeat=None)
    url = await serve(serve_app, {"GET /patient": server}, idle_timeout=0.2)
    async with contextlib.aclosing(
        sse_events(session, (url / "patient").with_query(count="4"))
    ) as events:
        async with asyncio.timeout(WAIT):
            got = [json.loads(event.data)["n"] async for event in events]
    assert got == [0, 1, 2, 3]  # 1.2 s, silent 0.3 s at a time, with a 0.2 s idle timeout


async def test_stop_ends_open_streams_at_once_with_unavailable(
    session: aiohttp.ClientSession,
) -> None:
    cleaned = asyncio.Event()

    @server_stream
    async def forever(ctx: Context, request: Ticks) -> AsyncIterator[Tick]:
        try:
            yield Tick(0)
            await asyncio.Event().wait()
        finally:
            cleaned.set()

    finals = Finals()
    handled: list[BaseException] = []
    server = SseServer(
        forever,
        decode_ticks,
        heartbeat=None,
        finalizer=[finals],
        error_handler=lambda ctx, exc: handled.append(exc),
    )
    app = web.Application()
    add_routes(app, {"GET /forever": server})
    running = await start_app(app, host="127.0.0.1", port=0, grace_period=10.0)
    try:
        stream = sse_events(session, running.url / "forever")
        async with asyncio.timeout(WAIT):
            await anext(stream)
            started = time.monotonic()
            await running.stop()
        assert time.monotonic() - started < 2.0  # not the 10 s grace period (twice)
        assert cleaned.is_set()
        assert (await finals.wait())[0] == 503
        assert handled == []  # a planned end, not an error to report
        with pytest.raises(Unavailable, match="shutting down"):
            async with asyncio.timeout(WAIT):
                await anext(stream)
    finally:
        await running.stop()


async def test_admission_is_held_until_the_stream_starts(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    limiter = ConcurrencyLimiter(1)
    release = asyncio.Event()

    @server_stream
    async def waits(ctx: Context, request: Ticks) -> AsyncIterator[Tick]:
        yield Tick(0)
        await release.wait()

    server = SseServer(waits, decode_ticks, admission=limiter, heartbeat=None)
    url = await serve(serve_app, {"GET /waits": server})
    first = sse_events(session, url / "waits")
    second = sse_events(session, url / "waits")
    try:
        async with asyncio.timeout(WAIT):
            await anext(first)
            assert limiter.in_flight == 0  # the first stream started and gave its slot back
            await anext(second)
    finally:
        release.set()
        await close_stream(first)
        await close_stream(second)


async def test_a_lifted_concurrency_limit_caps_open_streams(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    release = asyncio.Event()

    @server_stream
    async def waits(ctx: Context, request: Ticks) -> AsyncIterator[Tick]:
        yield Tick(0)
        await release.wait()

    capped = lift(concurrency_limit(1))(waits)
    url = await serve(serve_app, {"GET /waits": SseServer(capped, decode_ticks, heartbeat=None)})
    first = sse_events(session, url / "waits")
    try:
        async with asyncio.timeout(WAIT):
            await anext(first)
            async with session.get(url / "waits") as resp:  # refused before its first event
                assert resp.status == 503
                assert (await resp.json())["error"]["code"] == "UNAVAILABLE"
    finally:
        release.set()
        await close_stream(first)


async def test_head_gets_the_headers_and_no_stream(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    calls: list[int] = []

    @server_stream
    async def counted(ctx: Context, request: Ticks) -> AsyncIterator[Tick]:
        calls.append(1)
        yield Tick(0)

    url = await serve(serve_app, {"GET /ticks": SseServer(counted, decode_ticks)})
    async with asyncio.timeout(WAIT), session.head(url / "ticks") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/event-stream"
    assert calls == []


# -- the client ------------------------------------------------------------------------


async def test_the_client_raises_the_servers_error_for_a_non_2xx_answer(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    async def plain(request: web.Request) -> web.Response:
        return web.Response(text="<html>hello</html>", content_type="text/html")

    url = await serve(serve_app, {"GET /plain": plain})
    with pytest.raises(NotFound, match="no route for GET /nope"):
        async with contextlib.aclosing(sse_events(session, url / "nope")) as events:
            await anext(events)
    with pytest.raises(Internal, match="not text/event-stream"):
        async with contextlib.aclosing(sse_events(session, url / "plain")) as events:
            await anext(events)


async def test_the_client_parses_a_hostile_stream_and_bounds_its_events(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    async def tricky(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for piece in (b"\xef\xbb\xbf: hi\r", b"\ndata:one\r\ndata: two\r", b"\r", b"id:5\n\n"):
            await response.write(piece)
            await asyncio.sleep(0.01)  # separate chunks on the wire
        await response.write(b"data: " + b"y" * 5000)  # a line with no end
        await asyncio.sleep(0.5)
        return response

    url = await serve(serve_app, {"GET /tricky": tricky})
    got: list[Event] = []
    with pytest.raises(Unavailable, match="max_event_size"):
        await drain(sse_events(session, url / "tricky", max_event_size=4096), got)
    assert got == [Event("one\ntwo")]  # "id:5" then a blank line: no data, not an event


async def test_the_client_drops_a_silent_stream_after_read_timeout(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    @server_stream
    async def silent(ctx: Context, request: Ticks) -> AsyncIterator[Tick]:
        yield Tick(0)
        await asyncio.Event().wait()

    url = await serve(serve_app, {"GET /silent": SseServer(silent, decode_ticks, heartbeat=None)})
    with pytest.raises(Unavailable, match="read_timeout"):
        await drain(sse_events(session, url / "silent", read_timeout=0.2))


# -- the format ------------------------------------------------------------------------


def test_the_parser_reads_the_tricky_parts_of_the_format() -> None:
    parser = SseParser()
    stream = (
        b": a comment\n"
        b"data: first\r\ndata:second\r\ndata:  third\r\n\r\n"  # CRLF, no space, two spaces
        b"event: named\rid: 7\rretry: 1500\rdata\r\r"  # CR only; "data" with no colon
        b"id: 8\x009\nretry: soon\nunknown: x\ndata: keeps 7\n\n"  # NUL id, bad retry: ignored
        b"event: ignored\n\n"  # no data: not dispatched
        b"id\ndata: reset\n\n"  # an empty id resets it
        b"data: cut off at the end"
    )
    events = [event for i in range(len(stream)) for event in parser.feed(stream[i : i + 1])]
    assert events == [
        Event("first\nsecond\n third"),
        Event("", event="named", id="7", retry=1500),
        Event("keeps 7", id="7", retry=1500),
        Event("reset", retry=1500),
    ]
    assert SseParser().feed(stream) == events  # one chunk or byte by byte: the same
    assert SseParser().feed(b"\xef\xbb\xbfdata: bom\n\n") == [Event("bom")]
    assert SseParser().feed(b"data: \xff\n\n") == [Event("\ufffd")]


def test_the_parser_bounds_a_line_and_an_event() -> None:
    parser = SseParser(max_event_size=100)
    assert parser.feed(b": " + b"c" * 90 + b"\n") == []  # a comment under the limit
    with pytest.raises(Unavailable, match=r"over 100 bytes \(max_event_size\)"):
        parser.feed(b"data: " + b"x" * 200)  # no line end yet: the line alone is over
    parser = SseParser(max_event_size=100)
    for _ in range(6):  # short lines, one event growing to the limit...
        assert parser.feed(b"data: 0123456789\n") == []
    with pytest.raises(Unavailable, match="max_event_size"):  # ...and past it
        parser.feed(b"data: 0123456789\n")
    parser = SseParser(max_event_size=100)
    for _ in range(50):  # many small events: each is bounded, not their total
        assert parser.feed(b"data: 0123456789\n\n") == [Event("0123456789")]
    with pytest.raises(ValueError, match="max_event_size"):
        SseParser(max_event_size=0)


def test_an_event_encodes_what_the_parser_reads_back() -> None:
    events = [
        Event("plain"),
        Event("two\nlines\r\nand\rthree", event="named", id="a-1", retry=0),
        Event("", id=""),
    ]
    wire = b"".join(event.encode() for event in events)
    assert wire.startswith(b"data: plain\n\nid: a-1\nevent: named\nretry: 0\n")
    assert SseParser().feed(wire) == [
        Event("plain"),
        Event("two\nlines\nand\nthree", event="named", id="a-1", retry=0),
        Event("", retry=0),
    ]
    assert encode_data(b'{"a":1}') == b'data: {"a":1}\n\n'
    for bad in (Event("x", id="a\nb"), Event("x", id="a\0"), Event("x", event="a\rb")):
        with pytest.raises(ValueError, match="event"):
            bad.encode()
    with pytest.raises(ValueError, match="retry"):
        Event("x", retry=-1).encode()


def test_stream_error_gives_back_the_error_a_kitpy_server_sent() -> None:
    err = stream_error('{"error":{"code":"FAILED_PRECONDITION","message":"not yet"}}')
    assert isinstance(err, KitError)
    assert err.code.name == "FAILED_PRECONDITION"
    assert err.message == "not yet"
    assert isinstance(stream_error("<html>"), Unknown)
    assert isinstance(stream_error('{"error":{"code":"OK"}}'), Unknown)
    long = stream_error(json.dumps({"error": {"code": "NOT_FOUND", "message": "z\n" * 1000}}))
    assert isinstance(long, NotFound)
    assert len(long.message) <= 512
    assert "\n" not in long.message


def test_the_sse_server_takes_every_server_option() -> None:
    options = set(inspect.signature(SseServer).parameters)
    assert set(ServerOptions.__annotations__) <= options
    assert {"heartbeat", "write_timeout"} <= options


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="heartbeat"):
        SseServer(ticks, decode_ticks, heartbeat=0)
    with pytest.raises(ValueError, match="write_timeout"):
        SseServer(ticks, decode_ticks, write_timeout=-1)
