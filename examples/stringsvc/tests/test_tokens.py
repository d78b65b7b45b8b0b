"""Tokens, stringsvc's streaming method: without a network, over gRPC, over SSE, and the CLI."""

from __future__ import annotations

import json

import aiohttp
import grpc.aio
import pytest

from kitpy import Context, InvalidArgument, Unauthenticated
from kitpy.endpoint.stream import close_stream, collect, messages

from ..cli import call
from ..endpoints import TokensRequest, TokensResponse, make_endpoints, make_tokens_endpoint
from ..service import BasicStringService
from ..transport_grpc import make_grpc_client
from ..transport_http import make_http_client
from .running import running_service

SECRET = "a-test-secret-that-is-at-least-32-bytes-long"


async def test_the_tokens_endpoint_yields_each_word_upper_cased() -> None:
    tokens = make_tokens_endpoint(BasicStringService())
    responses = await collect(tokens(Context(), messages(TokensRequest(s="go kit  rocks"))))
    assert responses == [TokensResponse("GO"), TokensResponse("KIT"), TokensResponse("ROCKS")]
    with pytest.raises(InvalidArgument, match="empty string"):
        await collect(tokens(Context(), messages(TokensRequest(s=""))))


async def test_the_endpoints_set_streams_tokens_and_stops_early() -> None:
    eps = make_endpoints(BasicStringService())
    words = eps.tokens(Context(), "a b c d")
    assert [await anext(words), await anext(words)] == ["A", "B"]
    await close_stream(words)  # the caller stops reading: nothing more is asked for


async def test_tokens_over_grpc_and_sse_from_the_running_service() -> None:
    async with running_service() as svc:
        ctx = Context().with_timeout(10)
        async with aiohttp.ClientSession() as session:
            http = make_http_client(session, svc.http_url)
            assert [w async for w in http.tokens(ctx, "go kit")] == ["GO", "KIT"]
            with pytest.raises(InvalidArgument, match="empty string"):
                await collect(http.tokens(ctx, ""))
            # what curl or a browser's EventSource sees
            async with session.get(f"{svc.http_url}/tokens", params={"s": "hi there"}) as r:
                assert r.status == 200
                assert r.headers["Content-Type"].startswith("text/event-stream")
                body = (await r.read()).decode()
            data = [line[len("data: ") :] for line in body.splitlines() if line.startswith("data:")]
            assert [json.loads(d) for d in data] == [{"v": "HI"}, {"v": "THERE"}]
            async with session.get(f"{svc.http_url}/tokens") as r:
                assert r.status == 400
                assert "query parameter s" in (await r.json())["error"]["message"]
            async with grpc.aio.insecure_channel(svc.grpc_addr) as channel:
                grpc_client = make_grpc_client(channel)
                assert [w async for w in grpc_client.tokens(ctx, "go kit")] == ["GO", "KIT"]
                with pytest.raises(InvalidArgument, match="empty string"):
                    await collect(grpc_client.tokens(ctx, ""))
            async with session.get(f"{svc.http_url}/metrics") as r:
                metrics = await r.text()
        assert 'kitpy_server_streams_total{code="OK",method="tokens"} 3.0' in metrics
        assert 'kitpy_server_stream_messages_total{direction="sent",method="tokens"} 6.0' in metrics
        assert await svc.stop() == 0
    lines = [json.loads(line) for line in svc.lines if line.startswith("{")]
    streams = [line for line in lines if line.get("event") == "stream call"]
    assert [(s["method"], s["code"], s["sent"]) for s in streams if s["code"] == "OK"] == [
        ("tokens", "OK", 2)
    ] * 3
    assert all(s.get("request_id") for s in streams)


@pytest.mark.parametrize("transport", ["http", "grpc"])
async def test_the_cli_streams_tokens_with_a_signed_token(transport: str) -> None:
    async with running_service("--jwt-secret", SECRET) as svc:
        addr = svc.http_addr if transport == "http" else svc.grpc_addr
        ctx = Context().with_timeout(10)
        printed: list[str] = []
        with pytest.raises(Unauthenticated):
            await call("tokens", "x", transport=transport, addr=addr, ctx=ctx, out=printed.append)
        assert printed == []
        result = await call(
            "tokens", "go kit", transport=transport, addr=addr, ctx=ctx, jwt_secret=SECRET,
            out=printed.append,
        )  # fmt: skip
        assert (result, printed) == (None, ["GO", "KIT"])
        assert await svc.stop() == 0
