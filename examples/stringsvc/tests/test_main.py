"""The wired-up stringsvc process: both transports, auth, metrics, proxying, shutdown."""

from __future__ import annotations

import aiohttp
import grpc.aio
import pytest

from kitpy import Context, InvalidArgument, Unauthenticated

from ..cli import call
from ..transport_grpc import make_grpc_client
from ..transport_http import make_http_client
from .running import running_service

SECRET = "a-test-secret-that-is-at-least-32-bytes-long"


async def test_serves_http_and_grpc_and_exposes_metrics() -> None:
    async with running_service() as svc:
        async with aiohttp.ClientSession() as session:
            ctx = Context().with_timeout(10)
            assert await make_http_client(session, svc.http_url).uppercase(ctx, "hi") == "HI"
            async with grpc.aio.insecure_channel(svc.grpc_addr) as channel:
                assert await make_grpc_client(channel).count(ctx, "four") == 4
            async with session.get(f"{svc.http_url}/metrics") as response:
                metrics = await response.text()
            async with session.get(f"{svc.http_url}/healthz") as response:
                assert response.status == 200
        assert 'kitpy_server_requests_total{code="OK",method="uppercase"} 1.0' in metrics
        assert 'kitpy_server_requests_total{code="OK",method="count"} 1.0' in metrics
        assert await svc.stop() == 0
    assert "stringsvc: stopped" in svc.lines


@pytest.mark.parametrize("transport", ["http", "grpc"])
async def test_jwt_secret_protects_endpoints_and_cli_signs(transport: str) -> None:
    async with running_service("--jwt-secret", SECRET) as svc:
        addr = svc.http_addr if transport == "http" else svc.grpc_addr
        ctx = Context().with_timeout(10)
        with pytest.raises(Unauthenticated):
            await call("uppercase", "x", transport=transport, addr=addr, ctx=ctx)
        result = await call(
            "uppercase", "signed", transport=transport, addr=addr, ctx=ctx, jwt_secret=SECRET
        )
        assert result == "SIGNED"
        assert await svc.stop() == 0


@pytest.mark.parametrize("transport", ["http", "grpc"])
async def test_static_proxy_sends_uppercase_to_the_upstream(transport: str) -> None:
    async with running_service() as upstream:
        target = upstream.http_addr if transport == "http" else upstream.grpc_addr
        async with running_service(
            "--proxy", f"static://{target}", "--proxy-transport", transport
        ) as proxy:
            async with aiohttp.ClientSession() as session:
                client = make_http_client(session, proxy.http_url)
                ctx = Context().with_timeout(10)
                assert await client.uppercase(ctx, "via proxy") == "VIA PROXY"
                assert await client.count(ctx, "local") == 5
                with pytest.raises(InvalidArgument, match="empty string"):  # the caller's fault
                    await client.uppercase(ctx, "")
                async with session.get(f"{upstream.http_url}/metrics") as response:
                    upstream_metrics = await response.text()
                async with session.get(f"{proxy.http_url}/metrics") as response:
                    proxy_metrics = await response.text()
            assert await proxy.stop() == 0
        assert await upstream.stop() == 0
    # The upstream served the proxied Uppercase; Count stayed local to the proxy.
    assert 'kitpy_server_requests_total{code="OK",method="uppercase"} 1.0' in upstream_metrics
    assert 'kitpy_server_requests_total{code="OK",method="count"} 0.0' in upstream_metrics
    assert 'kitpy_client_requests_total{code="OK",method="uppercase"} 1.0' in proxy_metrics
    assert 'kitpy_breaker_state{upstream="' in proxy_metrics


async def test_proxy_with_no_reachable_upstream_answers_503_not_500() -> None:
    async with running_service(
        "--proxy", "static://127.0.0.1:9", "--proxy-timeout", "2", "--breaker-failures", "100"
    ) as proxy:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{proxy.http_url}/uppercase", json={"s": "x"}) as response,
        ):
            body = await response.json()
            status = response.status
        assert await proxy.stop() == 0
    assert status == 503
    assert body["error"] == {"code": "UNAVAILABLE", "message": "uppercase is unavailable"}
