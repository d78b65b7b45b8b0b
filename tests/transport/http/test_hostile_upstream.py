"""The HTTP Client against a hostile upstream (issue 24, part 2), on real sockets.

The upstream is a raw aiohttp app on 127.0.0.1 that answers what an attacker or
a broken server would: a 300 MB body (declared, chunked, or as a gzip bomb), an
error with a 1 MB message, a 500 that claims UNAUTHENTICATED, an nginx HTML
page, a 200 of garbage.  Each test asserts what the Client does instead of
trusting it: how much the upstream got to write, how much memory the call took,
which error the caller sees and what its message says.
"""

from __future__ import annotations

import asyncio
import gzip
import time
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web
from yarl import URL

from examples.stringsvc.proxy import ProxyingService
from examples.stringsvc.service import BasicStringService
from examples.stringsvc.transport_http import make_http_client
from kitpy import (
    Context,
    Internal,
    InvalidArgument,
    KitError,
    NotFound,
    RateLimited,
    Unauthenticated,
    Unavailable,
)
from kitpy.errors import is_retryable, is_server_fault
from kitpy.transport.http import (
    DEFAULT_MAX_RESPONSE_SIZE,
    MAX_ERROR_BODY_SIZE,
    Client,
    decode_json_response,
    encode_json_request,
    read_body,
)
from kitpy.transport.relay import MAX_RELAYED_MESSAGE

from .conftest import Echo, ServeApp

MiB = 1024 * 1024
HUGE = 300 * MiB
"""The attack's size: what grew the proxy to 983 MiB RSS before the fix."""
MOST_WRITTEN = 64 * MiB
"""The most a refused 300 MB answer may get written: the limit plus the socket buffers."""
OVER_4_MIB = "upstream response over 4 MiB (max_response_size)"


@dataclass
class Upstream:
    """What the hostile upstream did in its last answer: bytes written (or fed to its
    compressor) before it stopped."""

    written: int = 0
    stopped: asyncio.Event = field(default_factory=asyncio.Event)


def streaming_body(
    upstream: Upstream,
    *,
    size: int = HUGE,
    declare_length: bool = False,
    gzipped: bool = False,
    status: int = 200,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A handler streaming ``size`` bytes of filler, 1 MiB a write, until the peer leaves."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=status, headers={"Content-Type": "application/json"})
        if gzipped:
            response.headers["Content-Encoding"] = "gzip"
        if declare_length and not gzipped:
            response.content_length = size
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        block = b" " * MiB  # JSON whitespace: a body that would decode if it ever ended
        compressor = zlib.compressobj(wbits=31)  # gzip framing
        upstream.written = 0  # per request: the last one's count
        try:
            while upstream.written < size:
                data = compressor.compress(block) + compressor.flush(zlib.Z_SYNC_FLUSH)
                await response.write(data if gzipped else block)
                upstream.written += len(block)
            await response.write_eof(compressor.flush() if gzipped else b"")
        except ConnectionError:  # the client hung up: what we want
            pass
        finally:
            upstream.stopped.set()
        return response

    return handler


def answering(
    status: int, body: bytes, content_type: str = "application/json"
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, content_type=content_type)

    return handler


async def serve(serve_app: ServeApp, handler: Callable[[web.Request], Awaitable[Any]]) -> URL:
    app = web.Application()
    app.router.add_post("/x", handler)
    app.router.add_post("/uppercase", handler)
    app.router.add_post("/ok", answering(200, b'{"s": "fine"}'))
    return await serve_app(app)


def echo_client(session: aiohttp.ClientSession, url: URL, **options: Any) -> Client[Any, Echo]:
    return Client(
        session, "POST", url / "x", encode_json_request, decode_json_response(Echo), **options
    )


async def call_measured(client: Client[Any, Echo]) -> tuple[BaseException, float, int]:
    """Call ``client`` expecting a failure: (the error, seconds taken, peak bytes allocated)."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        async with asyncio.timeout(20):
            await client(Context(), Echo(s="a"))
    except Exception as exc:
        error: BaseException = exc
    else:
        raise AssertionError("the call succeeded")
    finally:
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return error, elapsed, peak


# -- bounded response bodies --------------------------------------------------------


@pytest.mark.parametrize("declare_length", [False, True], ids=["chunked", "content-length"])
async def test_a_300_mb_answer_is_refused_at_the_limit_without_reading_the_rest(
    serve_app: ServeApp, session: aiohttp.ClientSession, declare_length: bool
) -> None:
    upstream = Upstream()
    url = await serve(serve_app, streaming_body(upstream, declare_length=declare_length))
    error, elapsed, peak = await call_measured(echo_client(session, url))

    assert type(error) is Unavailable
    assert error.message == OVER_4_MIB
    assert is_retryable(error)
    assert is_server_fault(error)
    assert elapsed < 10
    assert peak < 3 * DEFAULT_MAX_RESPONSE_SIZE  # the call held about the limit, not 300 MB
    async with asyncio.timeout(10):
        await upstream.stopped.wait()  # the upstream's writes failed: we hung up on it
    assert upstream.written < MOST_WRITTEN
    # the session is unharmed: the next call on it goes through
    ok = Client(session, "POST", url / "ok", encode_json_request, decode_json_response(Echo))
    assert await ok(Context(), Echo(s="a")) == Echo(s="fine")


async def test_a_gzip_bomb_is_refused_by_its_decompressed_size(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    upstream = Upstream()  # counts the bytes it compressed: 300 MB inflate from ~300 KB
    url = await serve(serve_app, streaming_body(upstream, gzipped=True))
    error, _, peak = await call_measured(echo_client(session, url))

    assert type(error) is Unavailable
    assert error.message == OVER_4_MIB
    assert peak < 3 * DEFAULT_MAX_RESPONSE_SIZE  # never inflated past the limit

    # a small declared Content-Length says nothing about what a compressed body inflates to
    packed = gzip.compress(b'{"s": "big"' + b" " * (5 * MiB) + b"}")
    assert len(packed) < 64 * 1024

    async def packed_answer(request: web.Request) -> web.Response:
        return web.Response(body=packed, headers={"Content-Encoding": "gzip"})

    url = await serve(serve_app, packed_answer)
    with pytest.raises(Unavailable) as info:
        await echo_client(session, url)(Context(), Echo(s="a"))
    assert info.value.message == OVER_4_MIB
    roomy = echo_client(session, url, max_response_size=8 * MiB)
    assert await roomy(Context(), Echo(s="a")) == Echo(s="big")


async def test_max_response_size_is_set_per_client(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    filler = b" " * (5 * MiB)  # over the default limit, yet valid JSON around it

    async def five_mib_answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()  # no Content-Length: read_body has to count
        await response.prepare(request)
        await response.write(b'{"s": "big"' + filler + b"}")
        await response.write_eof()
        return response

    url = await serve(serve_app, five_mib_answer)
    with pytest.raises(Unavailable) as info:
        await echo_client(session, url)(Context(), Echo(s="a"))
    assert info.value.message == OVER_4_MIB

    roomy = echo_client(session, url, max_response_size=8 * MiB)
    assert await roomy(Context(), Echo(s="a")) == Echo(s="big")

    small = echo_client(session, url, max_response_size=1000)
    with pytest.raises(Unavailable) as info:
        await small(Context(), Echo(s="a"))
    assert info.value.message == "upstream response over 1000 bytes (max_response_size)"

    with pytest.raises(ValueError, match="max_response_size must be >= 0"):
        echo_client(session, url, max_response_size=-1)


async def test_custom_decoders_get_the_limit_and_a_declared_length_is_checked_for_them(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    upstream = Upstream()
    url = await serve(serve_app, streaming_body(upstream, size=2 * MiB))
    decoded: list[int] = []

    async def decode_lines(ctx: Context, response: aiohttp.ClientResponse) -> int:
        body = await read_body(ctx, response)  # the Client's max_response_size
        decoded.append(len(body))
        return len(body)

    client = Client(
        session, "POST", url / "x", encode_json_request, decode_lines, max_response_size=MiB
    )
    with pytest.raises(Unavailable) as info:
        await client(Context(), Echo(s="a"))
    assert info.value.message == "upstream response over 1 MiB (max_response_size)"
    assert decoded == []
    roomy = Client(
        session, "POST", url / "x", encode_json_request, decode_lines, max_response_size=4 * MiB
    )
    assert await roomy(Context(), Echo(s="a")) == 2 * MiB

    # a decoder that reads everything itself is still guarded by a declared Content-Length
    async def careless(ctx: Context, response: aiohttp.ClientResponse) -> int:
        decoded.append(len(await response.read()))
        return 0

    declared = await serve(serve_app, streaming_body(Upstream(), declare_length=True))
    with pytest.raises(Unavailable) as info:
        await Client(session, "POST", declared / "x", encode_json_request, careless)(
            Context(), Echo(s="a")
        )
    assert info.value.message == OVER_4_MIB
    assert decoded == [2 * MiB]  # only the roomy call's body: careless never ran


# -- relayed errors -----------------------------------------------------------------


def error_json(code: str, message: str, details: Any = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return msgspec.json.encode({"error": error})


async def test_an_error_body_with_a_1_mb_message_is_not_read_and_not_relayed(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    body = error_json("INVALID_ARGUMENT", "x" * MiB)
    assert len(body) > MAX_ERROR_BODY_SIZE
    url = await serve(serve_app, answering(400, body))  # declared: not read at all
    with pytest.raises(InvalidArgument) as info:
        await echo_client(session, url)(Context(), Echo(s="a"))
    assert info.value.message == "upstream answered 400 Bad Request"

    upstream = Upstream()  # chunked: read up to 64 KiB, then the connection is closed
    url = await serve(serve_app, streaming_body(upstream, status=400))
    with pytest.raises(InvalidArgument) as info:
        await echo_client(session, url)(Context(), Echo(s="a"))
    assert info.value.message == "upstream answered 400 Bad Request"
    async with asyncio.timeout(10):
        await upstream.stopped.wait()
    assert upstream.written < MOST_WRITTEN


async def test_a_long_error_message_is_capped_and_kept_on_one_line(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    message = "bad\r\ninput\x1b[2J\u202eevil\u2028" + "y" * 50_000
    url = await serve(serve_app, answering(400, error_json("INVALID_ARGUMENT", message)))
    with pytest.raises(InvalidArgument) as info:
        await echo_client(session, url)(Context(), Echo(s="a"))
    relayed = info.value.message
    assert len(relayed) == MAX_RELAYED_MESSAGE
    assert relayed.startswith("bad input [2J evil yyy")
    assert relayed.endswith("y\u2026")
    assert relayed.isprintable()


async def test_details_are_relayed_only_when_small(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    small = {"field": "s", "why": "empty"}
    url = await serve(serve_app, answering(404, error_json("NOT_FOUND", "no user", small)))
    with pytest.raises(NotFound) as info:
        await echo_client(session, url)(Context(), Echo(s="a"))
    assert (info.value.message, info.value.details) == ("no user", small)

    large = {"blob": "z" * 10_000}
    url = await serve(serve_app, answering(404, error_json("NOT_FOUND", "no user", large)))
    with pytest.raises(NotFound) as info:
        await echo_client(session, url)(Context(), Echo(s="a"))
    assert (info.value.message, info.value.details) == ("no user", None)  # code, message kept


@pytest.mark.parametrize(
    ("status", "claimed", "raised", "message"),
    [
        (500, "UNAUTHENTICATED", Internal, "upstream answered 500 Internal Server Error"),
        (503, "INVALID_ARGUMENT", Unavailable, "upstream answered 503 Service Unavailable"),
        (400, "UNAVAILABLE", InvalidArgument, "upstream answered 400 Bad Request"),
        (429, "NOT_FOUND", RateLimited, "upstream answered 429 Too Many Requests"),
        (401, "UNAUTHENTICATED", Unauthenticated, "claimed"),  # agreeing codes are believed
        (502, "UNAVAILABLE", Unavailable, "claimed"),
    ],
)
async def test_the_status_decides_the_code_and_a_body_only_when_it_agrees(
    serve_app: ServeApp,
    session: aiohttp.ClientSession,
    status: int,
    claimed: str,
    raised: type[KitError],
    message: str,
) -> None:
    url = await serve(serve_app, answering(status, error_json(claimed, "claimed")))
    with pytest.raises(KitError) as info:
        await echo_client(session, url)(Context(), Echo(s="a"))
    assert type(info.value) is raised
    assert info.value.message == message
    assert is_server_fault(info.value) == (status >= 500)  # the class never changes


async def test_an_html_502_maps_from_its_status_and_never_quotes_the_page(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    page = b"<html><body><h1>502 Bad Gateway</h1><hr>nginx/1.25.3 at 10.0.0.7</body></html>"

    async def nginx(request: web.Request) -> web.Response:
        return web.Response(status=502, reason="Gateway Says <script>", body=page)

    url = await serve(serve_app, nginx)
    with pytest.raises(Unavailable) as info:
        await echo_client(session, url)(Context(), Echo(s="a"))
    assert info.value.message == "upstream answered 502 Bad Gateway"  # the standard phrase


async def test_a_redirect_is_not_followed(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    followed: list[str] = []

    async def elsewhere(request: web.Request) -> web.Response:
        followed.append(request.path)
        return web.Response(status=200, body=b'{"s": "from elsewhere"}')

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(location="/elsewhere")

    app = web.Application()
    app.router.add_post("/x", redirect)
    app.router.add_post("/elsewhere", elsewhere)
    url = await serve_app(app)
    with pytest.raises(KitError) as info:
        await echo_client(session, url)(Context(), Echo(s="a"))
    assert "307 Temporary Redirect" in info.value.message
    assert followed == []  # the Client did not go where the upstream pointed


async def test_a_2xx_that_does_not_decode_keeps_the_decoders_words_out_of_the_message(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    url = await serve(serve_app, answering(200, b'{"s": "secret-token-1234", oops'))
    with pytest.raises(Internal) as info:
        await echo_client(session, url)(Context(), Echo(s="a"))
    assert info.value.message == "the upstream's response could not be decoded"
    assert isinstance(info.value.__cause__, msgspec.DecodeError)  # the detail, for the logs
    assert "oops" not in info.value.message
    assert "$" not in info.value.message

    url = await serve(serve_app, answering(201, b"[]"))  # a 2xx is never an error body
    with pytest.raises(Internal) as info:
        await echo_client(session, url)(Context(), Echo(s="a"))
    assert isinstance(info.value.__cause__, msgspec.ValidationError)


# -- the stringsvc proxy over a hostile HTTP upstream -------------------------------


async def test_the_stringsvc_proxy_survives_a_hostile_upstream(
    serve_app: ServeApp, session: aiohttp.ClientSession
) -> None:
    upstream = Upstream()
    url = await serve(serve_app, streaming_body(upstream))
    proxy = ProxyingService(
        BasicStringService(), make_http_client(session, str(url)).uppercase_endpoint
    )
    async with asyncio.timeout(20):
        with pytest.raises(Unavailable) as info:
            await proxy.uppercase(Context(), "hi")
        assert info.value.message == "uppercase is unavailable"
        cause = info.value.__cause__
        assert isinstance(cause, Unavailable)
        assert cause.message == OVER_4_MIB
        await upstream.stopped.wait()
    assert upstream.written < MOST_WRITTEN

    # the caller's own error passes through the proxy, relayed capped and on one line
    bad = error_json("INVALID_ARGUMENT", "bad\ninput " + "q" * 20_000)
    url = await serve(serve_app, answering(400, bad))
    proxy = ProxyingService(
        BasicStringService(), make_http_client(session, str(url)).uppercase_endpoint
    )
    with pytest.raises(InvalidArgument) as relayed:
        await proxy.uppercase(Context(), "hi")
    assert len(relayed.value.message) == MAX_RELAYED_MESSAGE
    assert relayed.value.message.startswith("bad input qqq")
