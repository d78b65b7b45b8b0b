"""The Gateway as one application (kitpy.gateway.app) on real sockets: routing, Connect routes,
live reloads, what it records per request, and ``python -m kitpy.gateway``.

Each gateway is a real :class:`~kitpy.gateway.Gateway` served with ``start_app`` on 127.0.0.1
port 0, in front of real upstreams: aiohttp apps that record what reached them, examples/
stringsvc's kitpy gRPC server, and a raw ``grpc.aio`` stringsvc that records its metadata.
:class:`~tests.gateway.rig.GatewayRig` (shared with test_edge.py and test_claims.py; the
``rig`` fixture is in conftest.py) starts them and stops them all after the test.  Every wait
is bounded: client sessions have a 10 s total timeout, polls and subprocesses an
``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import grpc.aio
import pytest
from aiohttp import web
from opentelemetry.trace import SpanKind
from yarl import URL

from examples.stringsvc.transport_grpc import SERVICE
from kitpy.circuitbreaker import CircuitBreaker, ConsecutiveFailures
from kitpy.config import Rejection
from kitpy.gateway import (
    Gateway,
    LiveRouteTable,
    Route,
    RouteObserver,
    RouteTable,
    Upstream,
)
from kitpy.sd import Instance
from kitpy.testing import CapturedLogs, MemoryCounter, MemoryHistogram, SpanRecorder
from tests.gateway.rig import (
    REPO,
    Exited,
    GatewayRig,
    answer_path,
    call_uppercase,
    get,
    no_resource_left_open,
    replace,
    run_module,
    stringsvc_descriptor_set,
    table,
)
from tests.waiting import until

# -- routing ---------------------------------------------------------------------------------


async def test_a_request_no_route_takes_is_a_json_404_with_a_request_id(rig: GatewayRig) -> None:
    up = await rig.upstream()
    _, url = await rig.gateway(table(Route(prefix="/api", upstream="api"), api=up.address))

    status, headers, body = await get(rig.client, url / "apix" / "users")
    assert status == 404
    assert body["error"]["code"] == "NOT_FOUND"
    assert "GET /apix/users" in body["error"]["message"]
    assert headers["X-Request-Id"]

    status, headers, _ = await get(rig.client, url / "other", {"X-Request-Id": "caller-7"})
    assert (status, headers["X-Request-Id"]) == (404, "caller-7")
    assert up.seen == []


async def test_an_http_route_strips_its_prefix_when_told_to(rig: GatewayRig) -> None:
    up = await rig.upstream()
    routes = table(
        Route(prefix="/api", upstream="api", strip_prefix=True),
        Route(prefix="/keep", upstream="api"),
        api=up.address,
    )
    _, url = await rig.gateway(routes)

    status, _, body = await get(rig.client, url.with_path("/api/users/7").with_query(x="1"))
    assert (status, body) == (200, {"target": "/users/7?x=1"})
    status, _, body = await get(rig.client, url / "api")
    assert (status, body) == (200, {"target": "/"})
    status, _, body = await get(rig.client, url / "keep" / "x")
    assert (status, body) == (200, {"target": "/keep/x"})


async def test_a_connect_route_reads_message_types_by_server_reflection(rig: GatewayRig) -> None:
    strings = await rig.stringsvc(reflection=True)
    _, url = await rig.gateway(
        table(Route(prefix=f"/{SERVICE}", upstream="strings", kind="connect"), strings=strings)
    )
    status, _, body = await call_uppercase(rig.client, url, "hello")
    assert (status, body) == (200, {"v": "HELLO"})
    status, _, body = await call_uppercase(rig.client, url, "")
    assert (status, body["code"]) == (400, "invalid_argument")  # stringsvc's own error


async def test_a_connect_route_reads_message_types_from_a_descriptor_set_file(
    rig: GatewayRig, tmp_path: Path
) -> None:
    strings = await rig.stringsvc(reflection=False)  # the file is the only source
    routes = RouteTable(
        [Route(prefix=f"/{SERVICE}", upstream="strings", kind="connect")],
        [
            Upstream(
                "strings", addresses=(strings,), descriptor_set=stringsvc_descriptor_set(tmp_path)
            )
        ],
    )
    _, url = await rig.gateway(routes)
    status, _, body = await call_uppercase(rig.client, url, "hello")
    assert (status, body) == (200, {"v": "HELLO"})


async def test_a_descriptor_set_that_does_not_load_refuses_the_table(
    rig: GatewayRig, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.binpb"
    garbage.write_bytes(b"\xff\xff not a descriptor set")
    for path in (str(tmp_path / "missing.binpb"), str(garbage)):
        routes = RouteTable(
            [Route(prefix=f"/{SERVICE}", upstream="strings", kind="connect")],
            [Upstream("strings", addresses=("127.0.0.1:1",), descriptor_set=path)],
        )
        with no_resource_left_open(), pytest.raises(ValueError, match=f"descriptor_set '{path}'"):
            async with Gateway(routes):
                pass

    # the same table arriving by a reload is rejected, and the old one keeps serving
    up = await rig.upstream()
    rejected: list[Rejection] = []
    live = LiveRouteTable(
        table(Route(prefix="/api", upstream="api"), api=up.address), on_reject=rejected.append
    )
    gateway, url = await rig.gateway(live)
    bad = RouteTable(
        [Route(prefix="/api", upstream="api"), Route(prefix="/rpc", upstream="s", kind="connect")],
        [
            Upstream("api", addresses=(up.address,)),
            Upstream("s", addresses=("127.0.0.1:1",), descriptor_set=str(garbage)),
        ],
    )
    assert live.set(bad) is False
    assert "descriptor_set" in str(rejected[0].reason)
    assert gateway.table.match("GET", "/rpc") is None
    status, _, _ = await get(rig.client, url / "api")
    assert (status, len(up.seen)) == (200, 1)


# -- live reloads ------------------------------------------------------------------------------

ROUTE_FILE = """
[upstream.a]
addresses = ["{a}"]

[[route]]
prefix = "/a"
upstream = "a"
retries = 0
"""

ROUTE_B = """
[upstream.b]
addresses = ["{b}"]

[[route]]
prefix = "/b"
upstream = "b"
timeout = "{timeout}"
"""


async def test_a_changed_route_file_adds_a_route_to_a_new_upstream(
    rig: GatewayRig, tmp_path: Path
) -> None:
    a, b = await rig.upstream(), await rig.upstream()
    path = tmp_path / "gateway.toml"
    path.write_text(ROUTE_FILE.format(a=a.address))
    gateway, url = await rig.gateway(LiveRouteTable(path=path, interval=0.05))
    assert (await get(rig.client, url / "a"))[0] == 200
    assert (await get(rig.client, url / "b"))[0] == 404

    replace(path, ROUTE_FILE.format(a=a.address) + ROUTE_B.format(b=b.address, timeout="5s"))
    await until(lambda: gateway.table.match("GET", "/b/x") is not None)

    status, _, body = await get(rig.client, url / "b" / "x")
    assert (status, body) == (200, {"target": "/b/x"})
    assert [seen.target for seen in b.seen] == ["/b/x"]
    assert [seen.target for seen in a.seen] == ["/a"]


async def test_a_reload_keeps_the_pool_of_an_unchanged_upstream_and_its_breakers(
    rig: GatewayRig,
) -> None:
    failed_once = False

    async def fail_once(request: web.Request) -> web.StreamResponse:
        nonlocal failed_once
        if not failed_once:
            failed_once = True
            return web.Response(status=500, text="a server fault")
        return web.json_response({"target": request.raw_path})

    a, b = await rig.upstream(fail_once), await rig.upstream()
    made: list[str] = []

    def one_strike(name: str, instance: Instance) -> CircuitBreaker:
        made.append(name)
        return CircuitBreaker(policy=ConsecutiveFailures(1), reset_timeout=60, name=name)

    def routes(b_timeout: float, *, a_key: str = "") -> RouteTable:
        return RouteTable(
            [
                Route(prefix="/a", upstream="a", retries=0),
                Route(prefix="/b", upstream="b", timeout=b_timeout),
            ],
            [
                Upstream("a", addresses=(a.address,), grpc_address_key=a_key),
                Upstream("b", addresses=(b.address,)),
            ],
        )

    live = LiveRouteTable(routes(5))
    gateway, url = await rig.gateway(live, breaker=one_strike)
    assert (await get(rig.client, url / "a"))[0] == 500  # relayed; a's breaker opens
    status, _, body = await get(rig.client, url / "a")
    assert (status, len(a.seen)) == (503, 1)  # refused by the open breaker: a saw nothing
    assert "circuit breakers are open" in body["error"]["message"]

    assert live.set(routes(7))  # only route /b changed
    assert [route.timeout for route in gateway.table.routes] == [30, 7]
    assert (await get(rig.client, url / "a"))[0] == 503  # the same pool: its breaker still open
    assert (await get(rig.client, url / "b"))[0] == 200
    assert (len(a.seen), sorted(made)) == (1, ["a", "b"])

    # upstream a's definition changed (in a field HTTP routes ignore): a new pool and breaker
    assert live.set(routes(7, a_key="grpc"))
    status, _, body = await get(rig.client, url / "a")
    assert (status, body, len(a.seen)) == (200, {"target": "/a"}, 2)
    assert sorted(made) == ["a", "a", "b"]


async def test_a_reload_closes_the_pool_of_an_upstream_that_left_the_table(
    rig: GatewayRig,
) -> None:
    up, strings = await rig.upstream(), await rig.stringsvc()
    channels: list[grpc.aio.Channel] = []

    def channel(address: str) -> grpc.aio.Channel:
        channels.append(grpc.aio.insecure_channel(address))
        return channels[-1]

    http_only = table(Route(prefix="/api", upstream="api"), api=up.address)
    both = table(
        Route(prefix="/api", upstream="api"),
        Route(prefix=f"/{SERVICE}", upstream="strings", kind="connect"),
        api=up.address,
        strings=strings,
    )
    live = LiveRouteTable(both)
    _, url = await rig.gateway(live, channel=channel)
    assert (await call_uppercase(rig.client, url, "hi"))[0] == 200
    assert len(channels) == 1

    assert live.set(http_only)
    await until(lambda: channels[0].get_state() is grpc.ChannelConnectivity.SHUTDOWN)
    assert (await call_uppercase(rig.client, url, "hi"))[0] == 404
    assert (await get(rig.client, url / "api"))[0] == 200


# -- what the gateway records ------------------------------------------------------------------


@dataclass
class Observed:
    """A RouteObserver whose logger, instruments and tracer are in memory."""

    logs: CapturedLogs = field(default_factory=CapturedLogs)
    requests: MemoryCounter = field(
        default_factory=lambda: MemoryCounter("requests", labelnames=("route", "code"))
    )
    duration: MemoryHistogram = field(
        default_factory=lambda: MemoryHistogram("duration", labelnames=("route",))
    )
    spans: SpanRecorder = field(default_factory=SpanRecorder)

    def observer(self) -> RouteObserver:
        return RouteObserver(
            logger=self.logs.logger,
            requests=self.requests,
            duration=self.duration,
            tracer=self.spans.tracer,
        )


async def test_a_request_no_route_takes_is_logged_counted_and_traced(rig: GatewayRig) -> None:
    up = await rig.upstream()
    seen = Observed()
    _, url = await rig.gateway(
        table(Route(prefix="/api", upstream="api"), api=up.address), observer=seen.observer()
    )
    status, _, _ = await get(rig.client, url / "wp-login.php", {"X-Request-Id": "scan-1"})
    assert status == 404
    [line] = seen.logs.find("request", route="(no route)")
    assert (line["status"], line["path"], line["request_id"]) == (404, "/wp-login.php", "scan-1")
    assert line["bytes"] > 0
    assert seen.requests.value(route="(no route)", code="404") == 1
    assert seen.duration.count(route="(no route)") == 1
    attributes = seen.spans.one("(no route)").attributes
    assert attributes is not None
    assert attributes["http.response.status_code"] == 404


def traceparent(value: str | bytes) -> tuple[int, int]:
    """The trace id and parent span id of a W3C ``traceparent`` value."""
    text = value.decode() if isinstance(value, bytes) else value
    version, trace_id, span_id, _ = text.split("-")
    assert version == "00"
    return int(trace_id, 16), int(span_id, 16)


async def test_an_http_route_logs_counts_times_and_traces_each_request(rig: GatewayRig) -> None:
    async def users(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/missing"):
            return web.json_response({"error": "no such user"}, status=404)
        return web.json_response({"user": 7})

    up = await rig.upstream(users)
    seen = Observed()
    routes = table(Route(prefix="/users", upstream="users", name="users"), users=up.address)
    _, url = await rig.gateway(routes, observer=seen.observer())

    status, _, _ = await get(rig.client, url / "users" / "7", {"X-Request-Id": "req-1"})
    assert status == 200
    await until(lambda: len(seen.logs.find("request")) == 1)
    line = seen.logs.assert_logged_once(
        "request",
        route="users",
        method="GET",
        path="/users/7",
        status=200,
        request_id="req-1",
        client="127.0.0.1",
    )
    assert line["bytes"] > 0
    assert line["duration_ms"] >= 0
    assert seen.requests.value(route="users", code="200") == 1
    assert seen.duration.count(route="users") == 1

    span = seen.spans.one("users")  # named by the route, not by a path or a function
    assert span.kind is SpanKind.SERVER
    assert span.context is not None
    trace_id, parent_id = traceparent(up.seen[0].headers["traceparent"])
    assert (trace_id, parent_id) == (span.context.trace_id, span.context.span_id)

    status, _, _ = await get(rig.client, url / "users" / "missing")
    assert status == 404  # the upstream's own answer, relayed
    await until(lambda: seen.requests.value(route="users", code="404") == 1)
    assert seen.duration.count(route="users") == 2
    assert len(seen.logs.find("request", route="users")) == 2


async def test_the_access_log_counts_the_body_bytes_of_a_proxied_answer(rig: GatewayRig) -> None:
    up = await rig.upstream()
    seen = Observed()
    _, url = await rig.gateway(
        table(Route(prefix="/api", upstream="api", name="api"), api=up.address),
        observer=seen.observer(),
    )
    async with rig.client.get(url / "api") as response:
        size = len(await response.read())
    await until(lambda: len(seen.logs.find("request")) == 1)
    assert seen.logs.find("request")[0]["bytes"] == size


async def test_a_callers_trace_continues_through_the_gateway(rig: GatewayRig) -> None:
    up = await rig.upstream()
    seen = Observed()
    routes = table(Route(prefix="/api", upstream="api", name="api"), api=up.address)
    _, url = await rig.gateway(routes, observer=seen.observer())
    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    assert (await get(rig.client, url / "api", {"traceparent": caller}))[0] == 200
    await until(lambda: len(seen.spans.named("api")) == 1)
    span = seen.spans.one("api")
    assert span.context is not None
    assert span.parent is not None
    assert span.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert span.parent.span_id == 0xB7AD6B7169203331
    trace_id, parent_id = traceparent(up.seen[0].headers["traceparent"])
    assert (trace_id, parent_id) == (span.context.trace_id, span.context.span_id)


async def test_a_connect_route_records_the_call_and_sends_its_trace_in_metadata(
    rig: GatewayRig, tmp_path: Path
) -> None:
    strings = await rig.recording_stringsvc()
    seen = Observed()
    routes = RouteTable(
        [Route(prefix=f"/{SERVICE}", upstream="strings", kind="connect", name="strings")],
        [
            Upstream(
                "strings",
                addresses=(strings.address,),
                descriptor_set=stringsvc_descriptor_set(tmp_path),
            )
        ],
    )
    _, url = await rig.gateway(routes, observer=seen.observer())

    status, headers, body = await call_uppercase(rig.client, url, "hello")
    assert (status, body) == (200, {"v": "HELLO"})
    await until(lambda: len(seen.logs.find("request")) == 1)
    line = seen.logs.assert_logged_once("request", route="strings", status=200)
    assert line["request_id"] == headers["X-Request-Id"]
    assert line["bytes"] == len(b'{"v":"HELLO"}')
    assert seen.requests.value(route="strings", code="200") == 1
    assert seen.duration.count(route="strings") == 1

    span = seen.spans.one("strings")
    assert span.context is not None
    metadata = dict(strings.metadata[0])
    assert traceparent(metadata["traceparent"]) == (span.context.trace_id, span.context.span_id)
    assert metadata["x-request-id"] == headers["X-Request-Id"]


async def test_a_caller_gone_before_the_answer_is_recorded_as_499(rig: GatewayRig) -> None:
    reached, release = asyncio.Event(), asyncio.Event()

    async def hang(request: web.Request) -> web.StreamResponse:
        reached.set()
        await release.wait()
        return web.Response(text="too late")

    up = await rig.upstream(hang)
    seen = Observed()
    _, url = await rig.gateway(
        table(Route(prefix="/slow", upstream="slow", name="slow", timeout=5), slow=up.address),
        observer=seen.observer(),
    )
    request = asyncio.create_task(get(rig.client, url / "slow"))
    try:
        async with asyncio.timeout(5):
            await reached.wait()
        request.cancel()  # the caller hangs up before any answer
        await until(lambda: bool(seen.logs.find("request")))
        seen.logs.assert_logged_once("request", route="slow", status=499, bytes=0)
        assert seen.requests.value(route="slow", code="499") == 1
        span = seen.spans.one("slow")
        assert span.attributes is not None
        assert span.attributes.get("http.response.status_code") == 499
    finally:
        release.set()


# -- python -m kitpy.gateway -------------------------------------------------------------------


async def gateway_command(*args: str) -> Exited:
    """Run ``python -m kitpy.gateway ARGS`` to its end (at most 10 s)."""
    return await run_module("kitpy.gateway", *args, within=10)


GOOD_FILE = """
listen = "127.0.0.1:0"
shutdown_grace = "1s"

[upstream.api]
addresses = ["{address}"]

[[route]]
prefix = "/api"
upstream = "api"
strip_prefix = true
"""


async def test_the_command_needs_a_config_file() -> None:
    exited = await gateway_command()
    assert exited.status == 2
    assert exited.stderr.count("\n") == 1
    assert "--config" in exited.stderr


async def test_the_command_refuses_a_bad_route_table_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(GOOD_FILE.format(address="127.0.0.1:1") + 'timeout = "soon"\n')
    exited = await gateway_command("--config", str(path))
    assert exited.status == 2
    assert exited.stderr.count("\n") == 1
    assert "route #1 (* /api): timeout: expected a duration" in exited.stderr


async def test_the_command_refuses_a_bad_setting(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(GOOD_FILE.format(address="127.0.0.1:1"))
    exited = await gateway_command("--config", str(path), "--listen", "x")
    assert exited.status == 2
    assert exited.stderr.count("\n") == 1
    assert "listen" in exited.stderr
    assert "'x'" in exited.stderr

    path.write_text(GOOD_FILE.format(address="127.0.0.1:1").replace("0.0.1:0", "0.0.1:port"))
    exited = await gateway_command("--config", str(path))  # the same, in the file
    assert exited.status == 2
    assert exited.stderr.count("\n") == 1
    assert "listen" in exited.stderr


async def test_the_command_lists_its_settings_in_help() -> None:
    exited = await gateway_command("--help")
    assert exited.status == 0
    for setting in ("--config", "--listen", "--jwt-secret", "--claims-secret", "--redis"):
        assert setting in exited.stdout


async def read_until(proc: asyncio.subprocess.Process, text: str, lines: list[str]) -> str:
    """Read ``proc``'s stdout into ``lines`` up to a line containing ``text`` (at most 10 s)."""
    assert proc.stdout is not None
    async with asyncio.timeout(10):
        while True:
            raw = await proc.stdout.readline()
            assert raw, "the gateway exited early:\n" + "\n".join(lines)
            lines.append(raw.decode().rstrip())
            if text in lines[-1]:
                return lines[-1]


async def test_the_command_serves_until_sigterm(rig: GatewayRig, tmp_path: Path) -> None:
    release = asyncio.Event()

    async def answer(request: web.Request) -> web.StreamResponse:
        if request.path == "/hang":
            await release.wait()
        return await answer_path(request)

    up = await rig.upstream(answer)
    path = tmp_path / "gateway.toml"
    path.write_text(GOOD_FILE.format(address=up.address))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kitpy.gateway", "--config", str(path),
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    lines: list[str] = []
    try:
        url = URL((await read_until(proc, "HTTP listening on", lines)).rsplit(" ", 1)[1])
        status, _, body = await get(rig.client, url / "api" / "x")
        assert (status, body) == (200, {"target": "/x"})

        # a caller that hangs up before its answer: its request stops at once, logged as 499
        hung_up = asyncio.create_task(get(rig.client, url / "api" / "hang"))
        await until(lambda: len(up.seen) == 2)
        hung_up.cancel()
        line = json.loads(await read_until(proc, '"status":499', lines))
        assert (line["route"], line["path"], line["bytes"]) == ("* /api", "/api/hang", 0)

        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        lines.extend(out.decode().splitlines())
        access = [json.loads(line) for line in lines if line.startswith("{")]
        assert [(line["route"], line["status"]) for line in access] == [
            ("* /api", 200),
            ("* /api", 499),
        ]
        assert "gateway: stopped" in lines
    finally:
        release.set()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
