"""The gateway as it is deployed: every part a real process on 127.0.0.1 (issue 21).

etcd (the shared ``etcd_server`` fixture), stringsvc instances started as
``python -m examples.stringsvc --register etcd://...`` and the gateway started as
``python -m kitpy.gateway --config FILE --listen 127.0.0.1:0``.  The module's stack
runs ``examples/gateway/gateway.toml`` as it is (only the listen address, the etcd
endpoint and the idle timeout come as flags), so the example cannot rot; tests
that kill instances get a stack of their own under a prefix of their own.

Callers are plain aiohttp, raw sockets (for what aiohttp would refuse to send) and
the ``connect-python`` client.  Every wait is bounded: each request by a timeout,
each process start and stop by a deadline, and every process is killed at the end
whatever happened.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from connectrpc.client import ConnectClient
from connectrpc.code import Code as ConnectCode
from connectrpc.errors import ConnectError

from examples.gateway.client import UPPERCASE, uppercase
from examples.stringsvc.pb import stringsvc_pb2 as pb
from kitpy.gateway import load_routes
from kitpy.gateway.settings import GatewaySettings
from tests.conftest import Etcd
from tests.gateway.rig import run_module

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "gateway" / "gateway.toml"
CONNECT_UPPERCASE = "/stringsvc.v1.StringService/Uppercase"
JSON = {"Content-Type": "application/json"}
START = 30.0  # seconds a process gets to start listening
REQUEST = 5.0  # seconds any one request gets: nothing a test sends may take longer
CLIENTS = 6  # concurrent callers in the load tests

pytestmark = pytest.mark.servers


# -- processes ------------------------------------------------------------------------


@dataclass
class Process:
    """A process started by a test; a thread reads its output into ``lines``."""

    name: str
    popen: subprocess.Popen[bytes]
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @classmethod
    def start(cls, name: str, *args: str) -> Process:
        """Run ``python *args`` from the repository root, stdout and stderr together."""
        popen = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C of pytest does not reach it; the fixture stops it
        )
        process = cls(name, popen)
        process.reader = threading.Thread(target=process._read, name=f"{name}-output", daemon=True)
        process.reader.start()
        return process

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:  # ends when the process closes its output
            self.lines.append(raw.decode(errors="replace").rstrip())

    def wait_for(self, prefix: str, *, within: float = START) -> str:
        """The first output line starting with ``prefix``; fails after ``within`` seconds."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line.startswith(prefix):
                    return line
            if self.popen.poll() is not None and not self._reading():
                raise RuntimeError(f"{self.name} exited before {prefix!r}:\n{self.output()}")
            time.sleep(0.02)
        raise TimeoutError(f"{self.name} printed no {prefix!r} in {within} s:\n{self.output()}")

    def count(self, text: str) -> int:
        """How many output lines so far contain ``text``."""
        return sum(text in line for line in list(self.lines))

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` if the process still runs."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def wait(self, *, within: float = 15.0) -> int:
        """Wait for the exit (killing the process after ``within`` s); its exit status."""
        try:
            status = self.popen.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            status = self.popen.wait(timeout=within)
        if self.reader is not None:
            self.reader.join(timeout=within)
        return status

    def output(self) -> str:
        """The last lines printed, for failure messages."""
        return "\n".join(self.lines[-40:])

    def _reading(self) -> bool:
        return self.reader is not None and self.reader.is_alive()


@dataclass
class Stringsvc:
    """A ``python -m examples.stringsvc`` process registered in etcd."""

    process: Process
    http_addr: str
    grpc_addr: str

    def calls(self) -> int:
        """Endpoint calls it has logged (one JSON line each)."""
        return self.process.count('"event":"endpoint call"')


@dataclass
class Gateway:
    """A ``python -m kitpy.gateway`` process and the URL it serves."""

    process: Process
    url: str

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


def start_stringsvc(etcd: Etcd, prefix: str) -> Process:
    """Start an instance on free ports registering under ``prefix`` (wait with
    :func:`ready_stringsvc`)."""
    register = etcd.url.replace("http://", "etcd://", 1)  # stringsvc spells it etcd://
    return Process.start(
        "stringsvc",
        "-m", "examples.stringsvc",
        "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0",
        "--register", register, "--sd-prefix", prefix, "--log-format", "json",
    )  # fmt: skip


def ready_stringsvc(process: Process) -> Stringsvc:
    """Wait until ``process`` listens and has registered itself."""
    http = process.wait_for("stringsvc: HTTP listening on http://").rsplit("//", 1)[1]
    grpc = process.wait_for("stringsvc: gRPC listening on ").rsplit(" ", 1)[1]
    process.wait_for(f"stringsvc: registered {http} in ")
    return Stringsvc(process, http, grpc)


def start_gateway(config: Path, *flags: str) -> Process:
    """Start the gateway CLI on ``config`` on a free port (wait with :func:`ready_gateway`)."""
    return Process.start(
        "gateway",
        "-m", "kitpy.gateway", "--config", str(config), "--listen", "127.0.0.1:0",
        "--shutdown-grace", "2s", *flags,
    )  # fmt: skip


def ready_gateway(process: Process) -> Gateway:
    """Wait until the gateway listens; the URL it announced."""
    line = process.wait_for("gateway: HTTP listening on http://")
    return Gateway(process, line.rsplit(" ", 1)[1])


def stop_all(processes: list[Process]) -> None:
    """SIGTERM every process still running, then wait for each (killing it if it lingers)."""
    for process in processes:
        process.signal(signal.SIGTERM)
    for process in processes:
        process.wait()


def wait_until_both_serve(gateway: Gateway, services: list[Stringsvc]) -> None:
    """Call through the gateway until every instance has answered an HTTP call once and the
    Connect route has answered once.

    The gateway learns of the instances through etcd, maybe after its own start, and each
    upstream pool (HTTP, gRPC) on its own: until then a call may be 503.  Bounded by
    ``START`` seconds.
    """
    deadline = time.monotonic() + START
    body = json.dumps({"s": "warm"}).encode()
    connected = False
    while not (connected and all(service.calls() for service in services)):
        if time.monotonic() > deadline:
            logs = "\n".join(service.process.output() for service in services)
            gateway_log = gateway.process.output()
            raise TimeoutError(f"not every instance got a call:\n{gateway_log}\n{logs}")
        served = urllib_post(gateway.url + "/api/uppercase", body) == 200
        connected = connected or urllib_post(gateway.url + CONNECT_UPPERCASE, body) == 200
        if not served:
            time.sleep(0.05)


def urllib_post(url: str, body: bytes) -> int | None:
    """POST ``body`` as JSON; the status, or None when no answer came (bounded)."""
    request = urllib.request.Request(url, data=body, headers=JSON, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=REQUEST) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


# -- the stacks -------------------------------------------------------------------------


@dataclass
class Stack:
    """A gateway in front of stringsvc instances."""

    gateway: Gateway
    services: list[Stringsvc]


@pytest.fixture(scope="module")
def example(etcd_server: Etcd) -> Iterator[Stack]:
    """``examples/gateway/gateway.toml`` run as its README says: two stringsvc instances
    registered under the default prefix, and the gateway CLI on the example's file."""
    processes: list[Process] = []
    try:
        for _ in range(2):
            processes.append(start_stringsvc(etcd_server, "/services/stringsvc/"))
        gateway_process = start_gateway(EXAMPLE, "--etcd", etcd_server.url, "--idle-timeout", "1s")
        processes.append(gateway_process)
        services = [ready_stringsvc(process) for process in processes[:2]]
        gateway = ready_gateway(gateway_process)
        wait_until_both_serve(gateway, services)
        yield Stack(gateway, services)
    finally:
        stop_all(processes)


@pytest.fixture
def own_stack(etcd_server: Etcd, tmp_path: Path) -> Iterator[Stack]:
    """Two instances under a prefix no other test uses and a gateway with the example's
    routes: this stack's instances may be killed."""
    prefix = f"/services/stringsvc-{uuid.uuid4().hex[:8]}/"
    config = tmp_path / "gateway.toml"
    config.write_text(EXAMPLE.read_text().replace('"/services/stringsvc/"', f'"{prefix}"'))
    assert prefix in config.read_text()
    processes: list[Process] = []
    try:
        for _ in range(2):
            processes.append(start_stringsvc(etcd_server, prefix))
        processes.append(start_gateway(config, "--etcd", etcd_server.url, "--no-access-log"))
        services = [ready_stringsvc(process) for process in processes[:2]]
        gateway = ready_gateway(processes[2])
        wait_until_both_serve(gateway, services)  # else the load's first calls may be 503
        yield Stack(gateway, services)
    finally:
        for process in processes:  # quick: registrations under this prefix just expire
            process.signal(signal.SIGKILL)
        stop_all(processes)


class Silent:
    """A TCP server that accepts connections and reads them, and never answers."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setblocking(False)
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="silent", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        host, port = self.listener.getsockname()[:2]
        return f"{host}:{port}"

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.listener, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.05):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if sock is self.listener:
                        conn, _ = sock.accept()
                        conn.setblocking(False)
                        selector.register(conn, selectors.EVENT_READ)
                        continue
                    try:
                        data = sock.recv(65536)
                    except OSError:  # reset by the gateway
                        data = b""
                    self.received += len(data)
                    if not data:
                        selector.unregister(sock)
                        sock.close()
            for key in list(selector.get_map().values()):
                assert isinstance(key.fileobj, socket.socket)
                key.fileobj.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@pytest.fixture
def hanging(tmp_path: Path) -> Iterator[tuple[Gateway, Silent]]:
    """A gateway whose route /hang (timeout 500ms) goes to an upstream that never answers."""
    silent = Silent()
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[upstream.hang]\naddresses = ["{silent.address}"]\n\n'
        '[[route]]\nprefix = "/hang"\nupstream = "hang"\ntimeout = "500ms"\n'
    )
    process = start_gateway(config, "--no-access-log")
    try:
        yield ready_gateway(process), silent
    finally:
        stop_all([process])
        silent.close()


# -- callers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One request's end: its status and body, or the error that ended it."""

    status: int | None
    body: bytes
    error: str
    at: float  # time.monotonic() when it ended

    def json(self) -> Any:
        return json.loads(self.body)


async def post(session: aiohttp.ClientSession, url: str, body: bytes) -> Outcome:
    """POST ``body`` as JSON within ``REQUEST`` seconds."""
    try:
        async with asyncio.timeout(REQUEST), session.post(url, data=body, headers=JSON) as resp:
            data = await resp.read()
        return Outcome(resp.status, data, "", time.monotonic())
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Outcome(None, b"", repr(exc), time.monotonic())


async def load(
    url: str, stop: asyncio.Event, outcomes: list[Outcome], *, clients: int = CLIENTS
) -> None:
    """``clients`` callers POSTing Uppercase to ``url`` one call after another until
    ``stop``, each call's end appended to ``outcomes``."""

    async def caller(session: aiohttp.ClientSession, number: int) -> None:
        sent = 0
        while not stop.is_set():
            sent += 1
            outcomes.append(await post(session, url, b'{"s": "caller %d-%d"}' % (number, sent)))

    async with aiohttp.ClientSession() as session, asyncio.TaskGroup() as group:
        for number in range(clients):
            group.create_task(caller(session, number))


async def raw_exchange(port: int, data: bytes, *, within: float = REQUEST) -> bytes:
    """Send ``data`` on a new connection; everything the gateway sends back until it closes.

    A reset while sending is not an error here: the gateway may answer and close
    before it read all of ``data``.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        async with asyncio.timeout(within):
            try:
                writer.write(data)
                await writer.drain()
            except ConnectionError:
                pass
            received = b""
            try:
                while chunk := await reader.read(65536):
                    received += chunk
            except ConnectionError:
                pass
            return received
    finally:
        writer.close()


async def until(condition: Callable[[], bool], *, within: float = START) -> None:
    """Return once ``condition()`` holds; ``TimeoutError`` after ``within`` seconds."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 -- polls other processes' output and a list
            await asyncio.sleep(0.02)


def split_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of one HTTP/1.x response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split(" ")[1]), headers, body


# -- the example file -----------------------------------------------------------------------


def test_the_example_route_table_is_valid() -> None:
    settings = {f.name for f in dataclasses.fields(GatewaySettings)}
    table = load_routes(EXAMPLE, ignore=settings)
    upstream = table.upstreams["stringsvc"]
    assert (upstream.etcd_prefix, upstream.grpc_address_key) == ("/services/stringsvc/", "grpc")
    api = table.match("POST", "/api/uppercase")
    assert api is not None
    assert api.kind == "http"
    assert api.upstream_path("/api/uppercase") == "/uppercase"
    connect = table.match("POST", CONNECT_UPPERCASE)
    assert connect is not None
    assert connect.kind == "connect"


# -- calls through the gateway --------------------------------------------------------------


async def test_http_json_through_the_gateway(example: Stack) -> None:
    async with aiohttp.ClientSession() as session:
        upper = await post(session, example.gateway.url + "/api/uppercase", b'{"s": "hello"}')
        count = await post(session, example.gateway.url + "/api/count", b'{"s": "hello"}')
        empty = await post(session, example.gateway.url + "/api/uppercase", b'{"s": ""}')
    assert (upper.status, upper.json()) == (200, {"v": "HELLO"})
    assert (count.status, count.json()) == (200, {"v": 5})
    assert empty.status == 400  # stringsvc's own error, relayed as it is
    assert empty.json() == {"error": {"code": "INVALID_ARGUMENT", "message": "empty string"}}


async def test_connect_json_from_plain_aiohttp(example: Stack) -> None:
    url = example.gateway.url + "/stringsvc.v1.StringService"
    async with aiohttp.ClientSession() as session:
        upper = await post(session, url + "/Uppercase", b'{"s": "hello"}')
        count = await post(session, url + "/Count", b'{"s": "hello"}')
        empty = await post(session, url + "/Uppercase", b'{"s": ""}')
    assert (upper.status, upper.json()) == (200, {"v": "HELLO"})
    assert (count.status, count.json()) == (200, {"v": "5"})  # protobuf JSON: int64 as a string
    assert empty.status == 400
    assert empty.json() == {"code": "invalid_argument", "message": "empty string"}


@pytest.mark.parametrize("proto_json", [True, False], ids=["json", "binary"])
async def test_connect_python_client(example: Stack, proto_json: bool) -> None:
    # the example's blocking client, off the event loop
    upper = await asyncio.to_thread(uppercase, "hello", url=example.gateway.url, json=proto_json)
    assert upper == "HELLO"
    async with ConnectClient(example.gateway.url, proto_json=proto_json, timeout_ms=5000) as client:
        with pytest.raises(ConnectError) as caught:
            await client.execute_unary(request=pb.UppercaseRequest(s=""), method=UPPERCASE)
    assert caught.value.code is ConnectCode.INVALID_ARGUMENT
    assert caught.value.message == "empty string"


async def test_the_example_client_command(example: Stack) -> None:
    async def client(*args: str) -> tuple[int, str, str]:
        url = example.gateway.url
        exited = await run_module("examples.gateway.client", *args, "--url", url, within=30)
        return exited.status, exited.stdout, exited.stderr

    assert await client("hello", "--json") == (0, "HELLO\n", "")
    assert await client("") == (1, "", "invalid_argument: empty string\n")


async def test_both_instances_take_calls(example: Stack) -> None:
    before = [service.calls() for service in example.services]
    async with aiohttp.ClientSession() as session:
        for _ in range(20):
            outcome = await post(session, example.gateway.url + "/api/uppercase", b'{"s": "a"}')
            assert outcome.status == 200

    def after() -> list[int]:
        return [service.calls() for service in example.services]

    await until(lambda: sum(after()) - sum(before) >= 20)  # their log lines were read
    assert sum(after()) - sum(before) == 20  # each call reached exactly one instance...
    assert all(a > b for a, b in zip(after(), before, strict=True))  # ...and both were used


# -- refusals --------------------------------------------------------------------------------


async def test_no_route_is_a_json_404(example: Stack) -> None:
    async with aiohttp.ClientSession() as session:
        outcome = await post(session, example.gateway.url + "/nowhere", b"{}")
    assert outcome.status == 404
    assert outcome.json()["error"]["code"] == "NOT_FOUND"


async def test_connect_unknown_method_is_unimplemented(example: Stack) -> None:
    url = example.gateway.url + "/stringsvc.v1.StringService/Nope"
    async with aiohttp.ClientSession() as session:
        outcome = await post(session, url, b"{}")
    assert outcome.status == 404
    assert outcome.json()["code"] == "unimplemented"
    async with ConnectClient(example.gateway.url, timeout_ms=5000) as client:
        nope = dataclasses.replace(UPPERCASE, name="Nope")
        with pytest.raises(ConnectError) as caught:
            await client.execute_unary(request=pb.UppercaseRequest(s="x"), method=nope)
    assert caught.value.code is ConnectCode.UNIMPLEMENTED


async def test_malformed_json_to_a_connect_route(example: Stack) -> None:
    async with aiohttp.ClientSession() as session:
        outcome = await post(session, example.gateway.url + CONNECT_UPPERCASE, b'{"s": ')
    assert outcome.status == 400
    error = outcome.json()
    assert error["code"] == "invalid_argument"
    assert error["message"].startswith("invalid stringsvc.v1.UppercaseRequest")


async def test_a_body_over_the_routes_limit(example: Stack) -> None:
    big = b'{"s": "' + b"x" * 100_000 + b'"}'  # the example's routes take 64KiB
    async with aiohttp.ClientSession() as session:
        http = await post(session, example.gateway.url + "/api/uppercase", big)
        connect = await post(session, example.gateway.url + CONNECT_UPPERCASE, big)
    assert http.status == 413
    assert http.json()["error"]["code"] == "INVALID_ARGUMENT"
    assert connect.status == 429  # what Connect servers answer
    assert connect.json()["code"] == "resource_exhausted"


@pytest.mark.parametrize(
    "request_head",
    [
        b"POST /api/uppercase HTTP/1.1\r\nHost: g\r\nX-Big: " + b"a" * 100 * 1024 + b"\r\n",
        b"POST /api/uppercase HTTP/1.1\r\nHost: g\r\n" + b"X-Many: a\r\n" * 1000,
        b"POST /api/" + b"a" * 100 * 1024 + b" HTTP/1.1\r\nHost: g\r\n",
    ],
    ids=["100KiB-header", "1000-headers", "100KiB-path"],
)
async def test_huge_request_heads_are_answered_4xx(example: Stack, request_head: bytes) -> None:
    body = b'{"s": "a"}'
    end = b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    raw = await raw_exchange(example.gateway.port, request_head + end + body)
    assert raw, "the gateway closed the connection without an answer"
    status, headers, answer = split_response(raw)
    assert status in (400, 431), raw[:300]
    assert headers["content-type"].startswith("application/json")
    assert json.loads(answer)["error"]["code"] == "INVALID_ARGUMENT"


async def test_a_client_trickling_its_headers_is_cut_off(example: Stack) -> None:
    # the module's gateway runs with --idle-timeout 1s: headers must be complete by then
    reader, writer = await asyncio.open_connection("127.0.0.1", example.gateway.port)
    writer.write(b"POST /api/uppercase HTTP/1.1\r\nHost: g\r\n")

    async def trickle() -> None:
        try:
            for number in range(10_000):
                writer.write(b"X-Slow-%d: a\r\n" % number)
                await writer.drain()
                await asyncio.sleep(0.1)
        except ConnectionError:
            pass  # the gateway closed the connection

    trickling = asyncio.create_task(trickle())
    try:
        async with asyncio.timeout(10):  # far beyond the idle timeout: a hang fails here
            try:
                answer = await reader.read()
            except ConnectionError:
                answer = b""
    finally:
        trickling.cancel()
        writer.close()
    assert answer == b"" or split_response(answer)[0] in (400, 408)
    async with aiohttp.ClientSession() as session:  # the gateway still serves everyone else
        outcome = await post(session, example.gateway.url + "/api/uppercase", b'{"s": "ok"}')
    assert outcome.status == 200


async def test_an_upstream_that_hangs_costs_the_deadline(hanging: tuple[Gateway, Silent]) -> None:
    gateway, silent = hanging
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        outcome = await post(session, gateway.url + "/hang/x", b'{"s": "a"}')
    took = time.monotonic() - started
    assert outcome.status == 504, outcome
    assert outcome.json()["error"]["code"] == "DEADLINE_EXCEEDED"
    assert took < REQUEST  # the route's 500ms, not forever (no exact time: machines vary)
    assert silent.received > 0  # the request did reach the upstream, which sat on it


# -- an instance dies under load --------------------------------------------------------------


def check_failure(outcome: Outcome, kind: str) -> None:
    """A failed call is a 502/503 with the route kind's JSON error, never a hang or a cut."""
    assert outcome.status in (502, 503), outcome
    if kind == "http":
        assert outcome.json()["error"]["code"] == "UNAVAILABLE", outcome
    else:
        assert outcome.json()["code"] == "unavailable", outcome


@pytest.mark.parametrize("kind", ["http", "connect"])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
async def test_an_instance_dies_under_load(
    own_stack: Stack, kind: str, sig: signal.Signals
) -> None:
    path = "/api/uppercase" if kind == "http" else CONNECT_UPPERCASE
    victim, survivor = own_stack.services
    stop = asyncio.Event()
    outcomes: list[Outcome] = []
    loading = asyncio.create_task(load(own_stack.gateway.url + path, stop, outcomes))
    try:
        await until(lambda: victim.calls() > 10 and survivor.calls() > 10)  # both serve
        victim.process.signal(sig)
        killed = time.monotonic()
        # past P2C's failure penalty (1 s), when the dead instance is picked again,
        # and until the callers have made 30 more calls
        await asyncio.sleep(1.5)
        await until(lambda: sum(o.at > killed + 0.5 for o in outcomes) >= 30)
    finally:
        stop.set()
        async with asyncio.timeout(2 * REQUEST):
            await loading
    exit_status = await asyncio.to_thread(victim.process.wait)

    assert all(o.status is not None for o in outcomes), [o for o in outcomes if o.status is None]
    failures = [o for o in outcomes if o.status != 200]
    for failure in failures:
        check_failure(failure, kind)
    for success in (o for o in outcomes if o.status == 200):
        assert success.json()["v"].startswith("CALLER ")
    after = [o for o in outcomes if o.at > killed + 0.5]
    if sig == signal.SIGTERM:
        assert exit_status == 0
        assert failures == []  # deregistered, drained, then stopped: no caller notices
    else:
        # only calls in flight on the victim fail; one that cannot connect to it (its
        # registration stays until its lease expires) goes to the survivor, whatever its
        # method: a refused HTTP connection, or a gRPC call that "failed to connect"
        assert len(failures) <= CLIENTS
        assert all(o.status == 200 for o in after)
