"""The soak topology: two stringsvc upstreams and a proxy in front of them, as real processes.

The proxy uses ``--proxy static://...`` (P2C, retry with budget, a breaker per
upstream, token-bucket rate limit).  :func:`request_counts` reads a service's
own ``kitpy_server_requests_total`` from its ``/metrics``, to compare with what
a load driver saw.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from .services import Service, start_service

__all__ = ["SECRET", "Topology", "request_counts", "topology"]

SECRET = "soak-secret-that-is-at-least-32-bytes-long"
"""The HS256 secret every service of the topology verifies tokens with."""


@dataclass
class Topology:
    """The proxy and its two upstreams."""

    proxy: Service
    upstreams: tuple[Service, Service]

    @property
    def services(self) -> tuple[Service, ...]:
        return (self.proxy, *self.upstreams)


@contextlib.asynccontextmanager
async def topology(
    log_dir: Path,
    *,
    proxy_transport: str = "http",
    proxy_qps: float = 120.0,
    proxy_burst: int = 30,
    sample_ratio: float = 0.1,
) -> AsyncIterator[Topology]:
    """Start two upstreams and a proxy over them; kill whatever still runs on exit.

    All three require a JWT signed with :data:`SECRET`, trace at ``sample_ratio``
    and log JSON to ``log_dir``; the proxy calls the upstreams over
    ``proxy_transport`` with a ``proxy_qps`` / ``proxy_burst`` token bucket.
    """
    common = (
        "--jwt-secret", SECRET, "--trace-sample-ratio", str(sample_ratio),
        "--shutdown-grace", "5",
    )  # fmt: skip
    started: list[Service] = []
    try:
        ups = await asyncio.gather(
            start_service("upstream-1", log_dir, *common),
            start_service("upstream-2", log_dir, *common),
            return_exceptions=True,
        )
        started.extend(u for u in ups if isinstance(u, Service))
        for u in ups:
            if isinstance(u, BaseException):
                raise u
        up1, up2 = started
        grpc_targets = proxy_transport == "grpc"
        targets = [u.grpc_addr if grpc_targets else u.http_addr for u in (up1, up2)]
        proxy = await start_service(
            "proxy", log_dir, *common,
            "--proxy", "static://" + ",".join(targets),
            "--proxy-transport", proxy_transport,
            "--proxy-qps", str(proxy_qps), "--proxy-burst", str(proxy_burst),
            "--breaker-failures", "5", "--breaker-reset", "5",
        )  # fmt: skip
        started.append(proxy)
        yield Topology(proxy, (up1, up2))
    finally:
        for service in started:
            if service.proc.returncode is None:
                service.proc.kill()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(10):
                        await service.proc.wait()


async def request_counts(session: aiohttp.ClientSession, service: Service) -> Counter[str]:
    """``kitpy_server_requests_total`` of ``service`` as ``"method code" -> count``."""
    async with asyncio.timeout(10), session.get(f"{service.http_url}/metrics") as response:
        text = await response.text()
    counts: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "kitpy_server_requests_total":
                counts[f"{sample.labels['method']} {sample.labels['code']}"] += int(sample.value)
    return counts
