"""Running an app: real listening sockets, graceful shutdown, signals."""

from __future__ import annotations

import asyncio
import os
import signal

import aiohttp
import pytest
from aiohttp import web

from kitpy.transport.http import start_app, wait_for_signal
from tests.waiting import until


async def test_graceful_stop_finishes_in_flight_and_refuses_new() -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        entered.set()
        await release.wait()
        return web.Response(text="finished")

    app = web.Application()
    app.router.add_get("/slow", slow)
    running = await start_app(app, host="127.0.0.1", port=0, grace_period=5.0)
    url = running.url
    assert running.addresses == [("127.0.0.1", url.port)]
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as first,
        aiohttp.ClientSession(timeout=timeout) as second,
    ):
        in_flight = asyncio.create_task(first.get(url / "slow"))
        async with asyncio.timeout(5):
            await entered.wait()
        stopping = asyncio.create_task(running.stop())
        await asyncio.sleep(0.1)  # the listening socket is closed by now
        assert not stopping.done()  # waiting for the request in flight
        with pytest.raises(aiohttp.ClientConnectionError):
            await second.get(url / "slow")
        release.set()
        async with asyncio.timeout(5):
            response = await in_flight
            assert response.status == 200
            assert await response.text() == "finished"
            response.release()
            await stopping


async def test_a_connection_accepted_just_before_stop_gets_its_first_request_answered() -> None:
    """Its client sent the request after connecting, as clients do: the stop must not cut it off.

    The listener closes first; a connection it accepted a moment before may not
    have delivered its first request yet.  Closing it then would reset a request
    the client sent on an open connection (no way to know whether it ran).
    """

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/ok", ok)
    running = await start_app(app, host="127.0.0.1", port=0, grace_period=5.0)
    host, port = running.addresses[0]
    reader, writer = await asyncio.open_connection(host, port)
    try:
        await until(lambda: running.connections.open == 1)  # accepted, no request yet
        stopping = asyncio.create_task(running.stop())
        await until(lambda: running.connections.socket is None, within=1.0)  # listener closed
        writer.write(b"GET /ok HTTP/1.1\r\nHost: kitpy\r\n\r\n")
        async with asyncio.timeout(5):
            answer = await reader.read()  # to EOF: the server closes after answering
            await stopping
        assert answer.startswith(b"HTTP/1.1 200"), answer
        assert answer.endswith(b"ok")
    finally:
        writer.close()


async def test_stop_cancels_what_outlives_the_grace_period() -> None:
    cancelled = asyncio.Event()

    async def stuck(request: web.Request) -> web.Response:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return web.Response()

    app = web.Application()
    app.router.add_get("/stuck", stuck)
    running = await start_app(app, host="127.0.0.1", port=0, grace_period=0.2)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        request = asyncio.create_task(session.get(running.url / "stuck"))
        await asyncio.sleep(0.1)
        async with asyncio.timeout(5):
            await running.stop()
            await cancelled.wait()
        with pytest.raises(aiohttp.ClientError):
            await request


async def test_wait_for_signal_returns_the_signal() -> None:
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, os.kill, os.getpid(), signal.SIGUSR1)
    async with asyncio.timeout(5):
        assert await wait_for_signal([signal.SIGUSR1]) is signal.SIGUSR1
