"""Benchmark: kitpy's API gateway vs a raw aiohttp proxy doing the same forwarding (issue 21).

Two comparisons in the same run, both loaded by ``wrk`` (as ``bench/http_server.py``
does: one thread, ``CONNECTIONS`` connections, the same POST body
``{"s": "hello, kitpy benchmark"}`` for every variant):

* **proxy** -- ``POST /uppercase`` forwarded to an HTTP upstream:

  - ``raw_proxy``: an aiohttp handler forwarding with one shared
    ``aiohttp.ClientSession``.  It streams both ways, as the gateway does:
    the caller's body goes up as it arrives (the request's ``StreamReader``
    is the client request's data) and the answer comes down chunk by chunk
    through a ``StreamResponse``.  It forwards the method, the path and query,
    the caller's headers without the hop-by-hop ones and ``Host``, appends
    the peer to ``X-Forwarded-For``, sets ``X-Forwarded-Proto``,
    ``X-Forwarded-Host`` and ``X-Request-Id`` (the caller's or a new one, also
    sent back), and relays the upstream's status and headers (502
    when the upstream cannot be reached);
  - ``gateway``: ``python -m kitpy.gateway --config FILE``, the real process,
    with a route ``prefix = "/uppercase"`` to the upstream (defaults: 30 s
    timeout, 2 retries, a breaker per instance, P2C) and ``access_log = false``;
  - ``nginx`` (a reference row, not a target): the Debian package's binary in
    the foreground, one worker, a generated config proxying ``/uppercase``
    over keep-alive upstream connections.  Without the binary the row says
    "skipped: install the Debian package nginx".

* **transcode** -- ``POST /stringsvc.v1.StringService/Uppercase`` with a JSON body,
  to a gRPC upstream:

  - ``raw_transcode``: an aiohttp handler that parses the body into an
    ``UppercaseRequest`` with ``google.protobuf.json_format``, calls the
    upstream through a generated ``StringServiceStub`` on one ``grpc.aio``
    channel (30 s timeout, the request id in the metadata), and answers
    ``MessageToDict`` as JSON (400 for a body that does not parse, 502 for a
    failed call);
  - ``gateway_connect``: the same gateway process's ``kind = "connect"`` route
    on prefix ``/stringsvc.v1.StringService``; its message types come from a
    ``descriptor_set`` file this script writes from the generated module.

The upstreams are the same for every variant and live for the whole run, each
in its own process: a minimal aiohttp app (``POST /uppercase``, msgspec in
and out) and a raw ``grpc.aio`` server with ``bench/grpc_server.py``'s
servicer.  Every round starts fresh proxy processes (two processes of one
server differ by a few percent), checks each path's answer and warms each
for 1 s, then loads each variant in two bursts of ``--duration`` seconds,
the rows there and back (``raw_proxy gateway nginx raw_transcode
gateway_connect``, then the reverse; the next round starts from the other
end), so that the two sides of a ratio see the same minute of a shared
machine.  The proxies (every thread) are pinned to the last CPU; wrk and the
upstreams to the others.  Each row says how busy its upstream was (CPU
seconds per second): wrk shares that CPU, so near 0.8 the upstream side, not
the proxy, would limit the rate and the ratio would flatter the slower proxy
(nginx's row gets there: it is a reference, not a measurement of nginx).

Figures per variant: req/s, p50/p99 latency (wrk's), the proxy process's CPU
time per request (``/proc``, all threads; nginx's master and worker).  The
ratios are medians of the per-round ratios: ``ratio_proxy`` (gateway req/s
over raw_proxy's, target >= 0.90), ``ratio_transcode`` (gateway_connect over
raw_transcode, target >= 0.90), ``ratio_*_cpu`` (raw CPU per request over
the gateway's); ``nginx_over_raw_proxy`` is printed as a reference.  The last
line is JSON.

Run: ``python bench/gateway.py [--rounds N] [--duration S]`` (6 rounds, 1 s
bursts: about two minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# run as a script from anywhere: `bench`, `examples` importable, and bench/jwt.py (first on the
# path as this script's folder) must not shadow pyjwt's `jwt`, which kitpy.auth.jwt imports
sys.path[:] = [p for p in sys.path if Path(p or os.curdir).resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import aiohttp
import grpc
import grpc.aio
import msgspec
from aiohttp import web
from google.protobuf import descriptor_pb2, json_format
from multidict import CIMultiDict, CIMultiDictProxy

from bench.grpc_server import RawServicer, serve_servicer
from bench.http_server import (
    BODY,
    CONNECTIONS,
    WRK,
    cpu_seconds,
    cpu_split,
    pin,
    serve_app,
    write_wrk_script,
)
from examples.stringsvc.pb import stringsvc_pb2 as pb
from examples.stringsvc.pb import stringsvc_pb2_grpc as pb_grpc
from kitpy.gateway.headers import HOP_BY_HOP

__all__ = ["main"]

ROUNDS = 6
DURATION = 1  # seconds per burst, two bursts per variant a round (wrk takes whole seconds)
WARMUP = 1  # seconds of load on each path of a round's fresh processes before its bursts
NGINX = "nginx"
PROXY_PATH = "/uppercase"
CONNECT_PATH = "/stringsvc.v1.StringService/Uppercase"
EXPECTED = {"v": "HELLO, KITPY BENCHMARK"}
TARGET = 0.90
START_TIMEOUT = 30.0
NGINX_SKIPPED = "skipped: install the Debian package nginx"

# the rows of the report, each a variant on one path; the gateway process serves two of them
PROXY_ROWS = ("raw_proxy", "gateway", "nginx")
TRANSCODE_ROWS = ("raw_transcode", "gateway_connect")
ROWS = (*PROXY_ROWS, *TRANSCODE_ROWS)
PATHS = {
    "raw_proxy": PROXY_PATH,
    "gateway": PROXY_PATH,
    "nginx": PROXY_PATH,
    "raw_transcode": CONNECT_PATH,
    "gateway_connect": CONNECT_PATH,
}
PROCESS_OF = {"gateway_connect": "gateway"}  # rows served by another row's process

"""Headers that describe one connection; the raw proxy drops them both ways (and ``Host`` up)."""


# -- the servers (child processes, ``--serve NAME``) -----------------------------------------


class _Upper(msgspec.Struct, frozen=True):
    s: str


def make_upstream_app() -> web.Application:
    """The HTTP upstream: ``POST /uppercase`` ``{"s": ...}`` -> ``{"v": ...}``."""
    decode = msgspec.json.Decoder(_Upper).decode
    encode = msgspec.json.Encoder().encode

    async def uppercase(request: web.Request) -> web.Response:
        try:
            text = decode(await request.read()).s
        except msgspec.MsgspecError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except ConnectionResetError:  # the proxy went away mid-body: nobody to answer
            return web.Response(status=400)
        return web.Response(body=encode({"v": text.upper()}), content_type="application/json")

    app = web.Application()
    app.router.add_post(PROXY_PATH, uppercase)
    return app


def _end_to_end(headers: CIMultiDictProxy[str], drop: frozenset[str]) -> CIMultiDict[str]:
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in drop)


def make_raw_proxy_app(session: aiohttp.ClientSession, upstream: str) -> web.Application:
    """A raw aiohttp reverse proxy to ``upstream`` (host:port) over ``session``, streaming
    both ways."""
    base = f"http://{upstream}"
    up_drop = HOP_BY_HOP | {"host", "x-forwarded-proto", "x-forwarded-host", "x-request-id"}
    prefix, ids = os.urandom(6).hex() + "-", itertools.count(1)

    async def forward(request: web.Request) -> web.StreamResponse:
        # the caller's request id or a new one, sent upstream and back, as the gateway does
        request_id = request.headers.get("X-Request-Id") or f"{prefix}{next(ids)}"
        headers = _end_to_end(request.headers, up_drop)
        headers["X-Request-Id"] = request_id
        peer = request.remote or ""
        forwarded = request.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{forwarded}, {peer}" if forwarded else peer
        headers["X-Forwarded-Proto"] = request.scheme
        headers["X-Forwarded-Host"] = request.host
        try:
            async with session.request(
                request.method,
                base + request.rel_url.raw_path_qs,
                headers=headers,
                data=request.content if request.body_exists else None,
                allow_redirects=False,
                auto_decompress=False,
            ) as answer:
                response = web.StreamResponse(
                    status=answer.status, headers=_end_to_end(answer.headers, HOP_BY_HOP)
                )
                response.headers["X-Request-Id"] = request_id
                try:
                    await response.prepare(request)
                    async for chunk in answer.content.iter_any():
                        await response.write(chunk)
                    await response.write_eof()
                except ConnectionResetError:  # the caller went away (wrk does, when it stops)
                    pass
                return response
        except aiohttp.ClientOSError:  # unreachable, or the body could not go up: the caller
            # went away mid-body (wrk's connections, when it stops) or the upstream reset
            return web.json_response(
                {"error": "upstream failed"}, status=502, headers={"X-Request-Id": request_id}
            )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def make_raw_transcode_app(channel: grpc.aio.Channel) -> web.Application:
    """JSON in, a raw grpc.aio stub call on ``channel``, JSON out."""
    stub = pb_grpc.StringServiceStub(channel)  # type: ignore[no-untyped-call]
    prefix, ids = os.urandom(6).hex() + "-", itertools.count(1)

    async def uppercase(request: web.Request) -> web.Response:
        request_id = request.headers.get("X-Request-Id") or f"{prefix}{next(ids)}"
        headers = {"X-Request-Id": request_id}
        message = pb.UppercaseRequest()
        try:
            json_format.Parse(await request.read(), message, ignore_unknown_fields=True)
        except json_format.ParseError as exc:
            return web.json_response({"error": str(exc)}, status=400, headers=headers)
        try:
            reply = await stub.Uppercase(
                message, timeout=30.0, metadata=(("x-request-id", request_id),)
            )
        except grpc.aio.AioRpcError as exc:
            return web.json_response({"error": exc.code().name}, status=502, headers=headers)
        return web.json_response(json_format.MessageToDict(reply), headers=headers)

    app = web.Application()
    app.router.add_post(CONNECT_PATH, uppercase)
    return app


async def serve(name: str, upstream: str) -> None:
    """Serve ``name`` on 127.0.0.1 (a free port, printed) until stdin closes; ``upstream``
    is the proxies' upstream (host:port)."""
    if name == "upstream_http":
        await serve_app(make_upstream_app())
    elif name == "upstream_grpc":
        await serve_servicer(RawServicer())
    elif name == "raw_proxy":
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
            await serve_app(make_raw_proxy_app(session, upstream))
    elif name == "raw_transcode":
        async with grpc.aio.insecure_channel(upstream) as channel:
            await serve_app(make_raw_transcode_app(channel))
    else:
        raise ValueError(f"unknown server {name!r}")


# -- starting and stopping processes -------------------------------------------------------


def free_port() -> int:
    """A port nothing listens on now (for the servers that need one in their config)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (nginx's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


@dataclass
class Process:
    """A server process: its port, the pids whose CPU counts, how to stop it, its log."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    stop_signal: signal.Signals | None = None  # None: close stdin
    log: Path | None = None
    pids: tuple[int, ...] = ()

    def cpu(self) -> float:
        """CPU seconds used so far by the process (and the children found at start)."""
        return sum(cpu_seconds(pid) for pid in self.pids or (self.proc.pid,))

    def stop(self) -> None:
        """Ask it to stop (stdin closed, or its signal); killed after 15 s."""
        if self.stop_signal is None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        elif self.proc.poll() is None:
            self.proc.send_signal(self.stop_signal)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_python(name: str, cpus: set[int], upstream: str = "") -> Process:
    """This file's ``--serve name`` (pinned to ``cpus``), once it has printed its port."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", name, "--upstream", upstream],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        preexec_fn=lambda: pin(cpus),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.isdigit():
        proc.kill()
        proc.wait()
        raise RuntimeError(f"server {name} did not start: {line!r}")
    return Process(name, proc, int(line))


def wait_listening(process: Process, *, timeout: float = START_TIMEOUT) -> None:
    """Return once ``process`` accepts connections; RuntimeError (with its log) if it exits
    or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", process.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    process.stop()
    log = process.log.read_text()[-2000:] if process.log and process.log.exists() else ""
    raise RuntimeError(f"{process.name} did not start listening on {process.port}:\n{log}")


def write_descriptor_set(path: Path) -> None:
    """stringsvc's ``FileDescriptorSet`` (the file and its imports), for the Connect route."""
    fds = descriptor_pb2.FileDescriptorSet()
    pending, seen = [pb.DESCRIPTOR], set()
    while pending:
        file = pending.pop()
        if file.name not in seen:
            seen.add(file.name)
            file.CopyToProto(fds.file.add())
            pending.extend(file.dependencies)
    path.write_bytes(fds.SerializeToString())


GATEWAY_CONFIG = """\
listen = "127.0.0.1:{port}"
access_log = false

[upstream.upper-http]
addresses = ["127.0.0.1:{http}"]

[upstream.upper-grpc]
addresses = ["127.0.0.1:{grpc}"]
descriptor_set = "{descriptors}"

[[route]]
prefix = "/uppercase"
upstream = "upper-http"

[[route]]
prefix = "/stringsvc.v1.StringService"
upstream = "upper-grpc"
kind = "connect"
"""


def gateway_command(workdir: Path, http: int, grpc_port: int) -> tuple[list[str], int]:
    """The gateway's command line in front of both upstreams (its config written into
    ``workdir``) and the port it will listen on."""
    descriptors = workdir / "stringsvc.binpb"
    if not descriptors.exists():
        write_descriptor_set(descriptors)
    port = free_port()
    config = workdir / "gateway.toml"
    config.write_text(
        GATEWAY_CONFIG.format(port=port, http=http, grpc=grpc_port, descriptors=descriptors)
    )
    return [sys.executable, "-m", "kitpy.gateway", "--config", str(config)], port


def start_gateway(workdir: Path, http: int, grpc_port: int, cpus: set[int]) -> Process:
    """``python -m kitpy.gateway --config FILE`` in front of both upstreams."""
    command, port = gateway_command(workdir, http, grpc_port)
    log = workdir / "gateway.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: pin(cpus),
        )
    process = Process("gateway", proc, port, stop_signal=signal.SIGTERM, log=log)
    wait_listening(process)
    return process


NGINX_CONFIG = """\
{user}worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream upper {{
        server 127.0.0.1:{http};
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location /uppercase {{
            proxy_pass http://upper;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


def start_nginx(workdir: Path, http: int, cpus: set[int]) -> Process | None:
    """nginx in the foreground, one worker, proxying /uppercase; None when it is not installed."""
    binary = shutil.which(NGINX) or shutil.which(NGINX, path="/usr/sbin:/sbin")
    if binary is None:
        return None
    folder = workdir / "nginx"
    folder.mkdir(exist_ok=True)
    port = free_port()
    user = "user root;\n" if os.geteuid() == 0 else ""  # else the workers would run as nobody
    config = folder / "nginx.conf"
    config.write_text(NGINX_CONFIG.format(user=user, dir=folder, http=http, port=port))
    log = folder / "error.log"
    proc = subprocess.Popen(
        [binary, "-p", str(folder), "-c", str(config), "-e", str(log), "-g", "daemon off;"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: pin(cpus),
    )
    process = Process("nginx", proc, port, stop_signal=signal.SIGQUIT, log=log)
    wait_listening(process)
    deadline = time.monotonic() + START_TIMEOUT
    while not (workers := children(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)  # the master listens before it forks its worker
    process.pids = (proc.pid, *workers)
    return process


# -- load and checks -----------------------------------------------------------------------------


@dataclass
class Burst:
    """One wrk run against one variant, with the CPU the proxy and the upstream used meanwhile."""

    requests: int
    seconds: float  # wrk's own: requests / its req/s
    p50_ms: float
    p99_ms: float
    cpu: float  # the proxy's CPU seconds
    upstream_cpu: float


@dataclass
class Result:
    """One variant in one round: its bursts combined."""

    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float  # the proxy's CPU time per request
    upstream_busy: float  # the upstream's CPU seconds per second

    @classmethod
    def of(cls, bursts: Sequence[Burst]) -> Result:
        """Rates over the bursts' whole time; latencies as the mean of the bursts' (wrk
        reports percentiles, which do not add up)."""
        requests = sum(b.requests for b in bursts)
        seconds = sum(b.seconds for b in bursts)
        return cls(
            rps=requests / seconds,
            p50_ms=statistics.fmean(b.p50_ms for b in bursts),
            p99_ms=statistics.fmean(b.p99_ms for b in bursts),
            cpu_us=sum(b.cpu for b in bursts) / requests * 1e6,
            upstream_busy=sum(b.upstream_cpu for b in bursts) / seconds,
        )


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _percentile_ms(out: str, pct: str) -> float:
    found = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    return float(found.group(1)) * _UNITS[found.group(2)] if found else float("nan")


def run_wrk(port: int, path: str, seconds: int, script: Path) -> tuple[int, float, float, float]:
    """wrk against ``path``: (requests, req/s, p50 ms, p99 ms); RuntimeError on any error."""
    out = subprocess.run(
        [WRK, "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, check=True, timeout=seconds + 30,
        preexec_fn=lambda: pin(cpu_split()[1]),
    ).stdout  # fmt: skip
    requests = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if requests is None or rps is None or "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk failed or saw errors on {path}:\n{out}")
    p50, p99 = _percentile_ms(out, "50"), _percentile_ms(out, "99")
    return int(requests.group(1)), float(rps.group(1)), p50, p99


def check(port: int, path: str) -> None:
    """One request must come back 200 with the upper-cased body (retried for up to 10 s)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=BODY,
        headers={"Content-Type": "application/json"},
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                body = json.loads(answer.read())
            if body == EXPECTED:
                return
            problem = f"answered {body!r}"
        except OSError as exc:  # URLError, HTTPError (a 503 while the pool fills up), resets
            problem = str(exc)
        if time.monotonic() > deadline:
            raise RuntimeError(f"127.0.0.1:{port}{path}: {problem}")
        time.sleep(0.1)


def burst(process: Process, path: str, seconds: int, script: Path, upstream: Process) -> Burst:
    """Load ``path`` on ``process`` for ``seconds``."""
    cpu0, up0 = process.cpu(), upstream.cpu()
    requests, rps, p50, p99 = run_wrk(process.port, path, seconds, script)
    return Burst(requests, requests / rps, p50, p99, process.cpu() - cpu0, upstream.cpu() - up0)


# -- the run ----------------------------------------------------------------------------------


def round_order(round_no: int) -> list[str]:
    """The rows in measuring order: the pairs side by side, there and back (each row twice, so
    that drift during the round cancels), starting from the other end every other round."""
    rows = list(ROWS)
    if round_no % 2:
        rows.reverse()
    return [*rows, *reversed(rows)]


def run_round(
    round_no: int,
    workdir: Path,
    upstreams: dict[str, Process],
    seconds: int,
    script: Path,
) -> dict[str, Result]:
    """Fresh proxy processes, each path checked and warmed, then the round's bursts."""
    cpus = cpu_split()[0]
    http, grpc_up = upstreams["http"], upstreams["grpc"]
    processes: dict[str, Process] = {}
    try:
        processes["raw_proxy"] = start_python("raw_proxy", cpus, f"127.0.0.1:{http.port}")
        processes["raw_transcode"] = start_python(
            "raw_transcode", cpus, f"127.0.0.1:{grpc_up.port}"
        )
        processes["gateway"] = start_gateway(workdir, http.port, grpc_up.port, cpus)
        nginx = start_nginx(workdir, http.port, cpus)
        if nginx is not None:
            processes["nginx"] = nginx
        rows = {
            row: processes[PROCESS_OF.get(row, row)]
            for row in PATHS
            if PROCESS_OF.get(row, row) in processes
        }
        for row, process in rows.items():
            check(process.port, PATHS[row])
            run_wrk(process.port, PATHS[row], WARMUP, script)
        bursts: dict[str, list[Burst]] = {row: [] for row in rows}
        for row in round_order(round_no):
            if row in rows:
                upstream = http if PATHS[row] == PROXY_PATH else grpc_up
                bursts[row].append(burst(rows[row], PATHS[row], seconds, script, upstream))
        return {row: Result.of(measured) for row, measured in bursts.items()}
    finally:
        for process in processes.values():
            process.stop()


def median_of(results: list[dict[str, Result]], row: str, field: str) -> float:
    """The median of ``row``'s ``field`` over the rounds that measured it."""
    values: list[float] = [getattr(r[row], field) for r in results if row in r]
    return statistics.median(values)


def rps_ratios(results: list[dict[str, Result]], row: str, base: str) -> list[float]:
    """``row``'s req/s over ``base``'s, one figure per round."""
    return [r[row].rps / r[base].rps for r in results if row in r]


def cpu_ratios(results: list[dict[str, Result]], row: str, base: str) -> list[float]:
    """``base``'s CPU per request over ``row``'s, one figure per round (1.0: as cheap)."""
    return [r[base].cpu_us / r[row].cpu_us for r in results if row in r]


def report(results: list[dict[str, Result]], rounds: int, seconds: int) -> dict[str, Any]:
    """Print the table and the ratios; the figures for the JSON line."""
    print(
        f"\nwrk: 1 thread, {CONNECTIONS} connections, {rounds} rounds x 2 bursts of {seconds} s "
        f"per variant; "
        f"proxies on CPUs {sorted(cpu_split()[0]) or 'any'}, wrk and upstreams on "
        f"{sorted(cpu_split()[1]) or 'any'}"
    )
    print(f"{'variant':>16}  {'req/s':>8}  {'p50 ms':>7}  {'p99 ms':>7}  "
          f"{'proxy CPU us/req':>16}  {'upstream busy':>13}")  # fmt: skip
    figures: dict[str, Any] = {"bench": "gateway", "connections": CONNECTIONS}
    for row in ROWS:
        if not any(row in r for r in results):
            print(f"{row:>16}  {NGINX_SKIPPED}")
            figures[f"{row}_rps"] = None
            continue
        m = {f: median_of(results, row, f) for f in ("rps", "p50_ms", "p99_ms", "cpu_us")}
        busy = median_of(results, row, "upstream_busy")
        print(
            f"{row:>16}  {m['rps']:>8.0f}  {m['p50_ms']:>7.2f}  {m['p99_ms']:>7.2f}  "
            f"{m['cpu_us']:>16.1f}  {busy:>13.2f}"
        )
        figures[f"{row}_rps"] = round(m["rps"])
        figures[f"{row}_cpu_us_per_req"] = round(m["cpu_us"], 1)
        figures[f"{row}_p50_ms"] = round(m["p50_ms"], 3)
        figures[f"{row}_p99_ms"] = round(m["p99_ms"], 3)
    print()
    ratios = (
        ("ratio_proxy", "gateway", "raw_proxy"),
        ("ratio_transcode", "gateway_connect", "raw_transcode"),
    )
    for key, row, base in ratios:
        values = rps_ratios(results, row, base)
        cpu = statistics.median(cpu_ratios(results, row, base))
        ratio = statistics.median(values)
        verdict = "met" if ratio >= TARGET else "MISSED"
        print(
            f"{key}: {ratio:.3f} (target >= {TARGET:.2f}: {verdict}; per round "
            f"{', '.join(f'{v:.2f}' for v in values)}); by CPU per request (raw/gateway) {cpu:.3f}"
        )
        figures[key] = round(ratio, 3)
        figures[f"{key}_cpu"] = round(cpu, 3)
    if any("nginx" in r for r in results):
        nginx = statistics.median(rps_ratios(results, "nginx", "raw_proxy"))
        print(f"nginx / raw_proxy: {nginx:.3f} (reference, not a target)")
        figures["nginx_over_raw_proxy"] = round(nginx, 3)
    else:
        print(f"nginx: {NGINX_SKIPPED}")
        figures["nginx_over_raw_proxy"] = None
    figures.update(rounds=rounds, duration=seconds)
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--upstream", default="", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"rounds (default {ROUNDS})")
    parser.add_argument(
        "--duration", type=int, default=DURATION,
        help=f"whole seconds per burst (default {DURATION}; two bursts per variant a round)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve(args.serve, args.upstream))
        return
    if args.rounds < 1 or args.duration < 1:
        parser.error("--rounds and --duration must be at least 1")
    if shutil.which(WRK) is None:
        parser.error(f"needs wrk ({WRK}; Debian package wrk)")
    load_cpus = cpu_split()[1]
    upstreams: dict[str, Process] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        script = write_wrk_script(workdir / "post.lua")
        results: list[dict[str, Result]] = []
        try:
            upstreams["http"] = start_python("upstream_http", load_cpus)
            upstreams["grpc"] = start_python("upstream_grpc", load_cpus)
            print(f"{'round':>5}  " + "  ".join(f"{row:>15}" for row in ROWS))
            for round_no in range(args.rounds):
                measured = run_round(round_no, workdir, upstreams, args.duration, script)
                results.append(measured)
                cells = (
                    f"{measured[row].rps:>9.0f} req/s" if row in measured else f"{'-':>15}"
                    for row in ROWS
                )
                print(f"{round_no + 1:>5}  " + "  ".join(cells), flush=True)
        finally:
            for process in upstreams.values():
                process.stop()
    print(json.dumps(report(results, args.rounds, args.duration)))


if __name__ == "__main__":
    main()
