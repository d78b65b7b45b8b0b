"""A short soak in the suite: the driver of ``make soak``, with ~10 s of load instead of ~75 s.

Full stack on real processes (JWT, tracing at 10 %, JSON logs, metrics, a proxy
with rate limit + breakers over two upstreams), HTTP and gRPC clients, the
proxy calling its upstreams over HTTP or gRPC.  Every request must be accounted
for; the calm phases must see no rejection and the over-limit phase some 429s.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .driver import SoakOptions, soak
from .load import OK, RATE_LIMITED
from .report import format_table


@pytest.mark.parametrize("proxy_transport", ["http", "grpc"])
async def test_short_soak_accounts_for_every_request(tmp_path: Path, proxy_transport: str) -> None:
    options = SoakOptions(
        warmup=2,
        over=3,
        steady=3,
        calm_rate=90,
        over_rate=240,
        proxy_qps=100,
        proxy_burst=20,
        proxy_transport=proxy_transport,
        rss_limit_mb=None,
        log_dir=tmp_path,
        hostile=False,  # test_hostile.py runs its own short version
    )
    report = await soak(options, log=False)
    table = format_table(report.results)
    assert report.problems == [], table
    warmup, over, _, steady = report.results
    for calm in (warmup, steady):
        assert calm.count(OK) == calm.scheduled > 0, table
    assert over.count(RATE_LIMITED, transport="http") > 0, table
    assert over.count(RATE_LIMITED, transport="grpc") > 0, table
    assert over.count(OK) > 0, table
