"""The reading of callgrind output (bench/instructions.py) and of wrk's (bench/http_server.py)."""

from __future__ import annotations

import pytest

from bench import http_server, instructions

CALLGRIND_OUT = """\
# callgrind format
version: 1
creator: callgrind-3.24.0
pid: 4242
cmd:  python bench/http_server.py --serve raw
part: 1
positions: line
events: Ir Dr
summary: 123456789 555
fl= (1) ???
fn= (1) 0x0000000000001000
0 10 1
totals: 123456789 555
"""


def test_parse_totals_reads_the_ir_column() -> None:
    assert instructions.parse_totals(CALLGRIND_OUT) == 123456789


def test_parse_totals_picks_ir_when_it_is_not_the_first_event() -> None:
    assert instructions.parse_totals("events: Dr Ir\nsummary: 7 42\n") == 42


@pytest.mark.parametrize(
    ("text", "message"),
    [("events: Ir\n", "no totals"), ("events: Dr\ntotals: 5\n", "no Ir")],
)
def test_parse_totals_refuses_what_it_cannot_read(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        instructions.parse_totals(text)


WRK_OUT = """\
Running 10s test @ http://127.0.0.1:4000/uppercase
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    45.12ms   10.21ms  90.00ms   70.00%
  Latency Distribution
     50%    2.50ms
     99%   90.00ms
  3596 requests in 10.01s, 700.00KB read
Requests/sec:    359.24
"""


def test_parse_wrk_reads_rate_latencies_and_the_request_count() -> None:
    result = http_server.parse_wrk(WRK_OUT)
    assert (result.requests, result.rps) == (3596, 359.24)
    assert (result.p50_ms, result.p99_ms) == (2.5, 90.0)


def test_parse_wrk_refuses_a_run_with_errors() -> None:
    failing = WRK_OUT.replace("Requests/sec", "  Non-2xx or 3xx responses: 12\nRequests/sec")
    with pytest.raises(RuntimeError, match="saw errors"):
        http_server.parse_wrk(failing)


def test_count_per_request() -> None:
    assert instructions.Count(requests=4, instructions=1000).per_request == 250.0


def test_gateway_ratios_pair_each_raw_row_with_its_gateway_row() -> None:
    counts = {
        "raw_proxy": instructions.Count(requests=100, instructions=80_000_000),
        "gateway": instructions.Count(requests=100, instructions=100_000_000),
        "raw_transcode": instructions.Count(requests=50, instructions=30_000_000),
    }
    figures = instructions._gateway_figures(counts)
    assert figures["ir_ratio_proxy"] == 0.8
    assert "ir_ratio_transcode" not in figures  # its gateway row was not counted
    assert figures["gateway_instructions_per_request"] == 1_000_000
