"""Connections of an HTTP server: a cap on how many are open, JSON for aiohttp's own errors, drain.

:func:`~kitpy.transport.http.start_app` listens through :class:`Connections`,
which makes one aiohttp request handler per accepted connection, as aiohttp's
own listener does, and adds what a server facing the open internet needs:

* **A connection cap.**  At most ``max_connections`` connections are open at
  once; one more is answered ``503`` with ``Connection: close`` and a kitpy
  JSON body, without reading it, and closed.  Refusals are logged as one line
  per ``log_interval`` (a count), never one line per connection.  The default
  cap keeps a quarter of the process's file descriptors free, so a flood of
  idle connections cannot use them all (which would leave the process unable
  to accept, open files or call its upstreams).
* **JSON for aiohttp's own errors.**  A request aiohttp cannot parse (a bad
  request line, a header over ``max_field_size``, too many headers, bad
  chunking) is answered with the same JSON error body kitpy's Servers send --
  a fixed message for the status, never an echo of the offending bytes -- and
  summarised in the log like refusals, one line per interval.
* **Targets that are not paths.**  ``CONNECT host:port`` and ``OPTIONS *``
  are routed as ``/``, so they reach the application's routes (and
  ``add_fallback``'s JSON 404) instead of aiohttp's plain-text answer.
* **Drain.**  After :meth:`Connections.drain`, every kitpy Server's response
  says ``Connection: close``, so a client finishes its request and opens its
  next connection elsewhere instead of sending it on a connection about to
  close.

The request handler is aiohttp's :class:`aiohttp.web_protocol.RequestHandler`
with ``handle_error`` answering in JSON; everything else (parsing, keep-alive,
the idle timeout) is aiohttp's.  Nothing is added to a request's own path:
overriding ``finish_response`` (to add ``Connection: close``) or
``data_received`` (to note arrival times) each cost 2-2.5 us a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from yarl import URL

from kitpy.errors import code_from_http_status

__all__ = ["Connections", "default_max_connections"]

_log = logging.getLogger("kitpy.transport.http")


def default_max_connections() -> int:
    """Three quarters of the process's open-file limit (``ulimit -n``), at most 10,000.

    The rest stays for the listening sockets, upstream connections, files and
    logs.  With the common soft limit of 1,024 that is 768 connections; raise
    the limit (``ulimit -n 65536`` or the service manager's ``LimitNOFILE``) for
    more.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 10_000
    return max(16, min(10_000, soft * 3 // 4))


def _error_bytes(status: int, message: str) -> bytes:
    """A whole HTTP/1.1 response: the JSON error body for ``status``, closing the connection."""
    code = code_from_http_status(status).name
    body = f'{{"error":{{"code":"{code}","message":"{message}"}}}}'.encode()
    phrase = HTTPStatus(status).phrase
    head = (
        f"HTTP/1.1 {status} {phrase}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n"
    )
    if status == 503:
        head += "Retry-After: 1\r\n"
    return head.encode() + b"\r\n" + body


class _Tally:
    """Counts events and logs them as one line per interval (the first at once).

    ``what`` is the line, with ``%d`` for the count.
    """

    __slots__ = ("_count", "_interval", "_last", "_what", "last_reason")

    def __init__(self, what: str, interval: float) -> None:
        self._what = what
        self._interval = interval
        self._count = 0
        self._last = -float("inf")
        self.last_reason = ""

    def add(self, reason: str = "") -> None:
        self._count += 1
        self.last_reason = reason
        now = time.monotonic()
        if now - self._last >= self._interval:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        if self._count:
            detail = f" (the last: {self.last_reason})" if self.last_reason else ""
            _log.warning(self._what + "%s", self._count, detail)
            self._count = 0
        self._last = time.monotonic() if now is None else now


_REFUSAL = _error_bytes(503, "the server has too many open connections; retry")


class Connections:
    """The listening socket of :func:`~kitpy.transport.http.start_app` and what it accepts.

    ``server`` is the aiohttp low-level server an ``AppRunner`` made (its
    ``runner.server``); ``handler_options`` go to each connection's request
    handler (``keepalive_timeout``, ``max_field_size``, ...).  ``open`` is the
    number of connections open now, ``refused`` how many the cap turned away.

    It accepts connections itself (``loop.add_reader`` on the socket, then
    ``loop.connect_accepted_socket``) rather than through ``loop.create_server``,
    so that it can count a connection the moment it is accepted, refuse one
    over the cap without making a handler for it, and, when it stops, take in
    what is waiting in the kernel's backlog instead of resetting it.

    Example (what ``start_app`` does)::

        connections = Connections(runner.server, max_connections=1000)
        await connections.listen("127.0.0.1", 8080)
        ...
        await connections.stop_listening()
    """

    def __init__(
        self,
        server: web.Server,
        *,
        max_connections: int,
        log_interval: float = 10.0,
        **handler_options: Any,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        server.request_factory = _paths_only(server.request_factory)
        self.server = server
        self.max_connections = max_connections
        self.open = 0
        self.refused = 0
        self.draining = False
        self.socket: socket.socket | None = None
        self._closed_at: float | None = None  # when the listener closed (the loop's clock)
        self._options = handler_options
        self._connecting: set[asyncio.Task[None]] = set()
        self._refusals = _Tally(
            f"refused %d connection(s) over the limit of {max_connections} open connections",
            log_interval,
        )
        self.malformed = _Tally("answered %d request(s) that did not parse as HTTP", log_interval)
        self._accept_errors = _Tally("could not accept %d connection(s)", log_interval)

    async def listen(self, host: str, port: int, *, backlog: int = 128) -> None:
        """Bind ``host:port`` (``port=0``: a free one) and start accepting."""
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        family, *_, address = infos[0]
        sock = socket.create_server(address[:2], family=family, backlog=backlog)
        sock.setblocking(False)
        self.socket = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._accept)

    def _accept(self) -> None:
        """The loop calls this when the socket is readable."""
        if self.socket is not None and not self._accept_waiting(self.socket):
            # e.g. out of file descriptors: try again in a second, not in a busy loop
            asyncio.get_running_loop().remove_reader(self.socket.fileno())
            asyncio.get_running_loop().call_later(1.0, self._resume)

    def _accept_waiting(self, sock: socket.socket) -> bool:
        """Accept every connection waiting on ``sock``; False if accepting failed."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return True
            except OSError as exc:
                self._accept_errors.add(exc.strerror or type(exc).__name__)
                return False
            if self.open >= self.max_connections:
                self._refuse(conn)
                continue
            self.open += 1
            conn.setblocking(False)
            task = loop.create_task(self._connect(conn))
            self._connecting.add(task)
            task.add_done_callback(self._connecting.discard)

    def _resume(self) -> None:
        if self.socket is not None:
            asyncio.get_running_loop().add_reader(self.socket.fileno(), self._accept)

    def _refuse(self, conn: socket.socket) -> None:
        """Answer 503 on a connection over the cap, without reading it, and close it."""
        self.refused += 1
        self._refusals.add()
        with contextlib.suppress(OSError):
            conn.setblocking(False)
            conn.send(_REFUSAL)
        conn.close()

    async def _connect(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(self._handler, conn)
        except OSError:  # the peer left before its transport was made
            self.open -= 1
            conn.close()

    def _handler(self) -> _Handler:
        return _Handler(self, loop=asyncio.get_running_loop(), **self._options)

    @property
    def address(self) -> tuple[str, int]:
        """The ``(host, port)`` it listens on (the real port when asked for port 0)."""
        if self.socket is None:
            raise RuntimeError("not listening")
        name = self.socket.getsockname()
        return str(name[0]), int(name[1])

    async def stop_listening(self) -> None:
        """Stop accepting and close the socket: new connections are refused, open ones go on.

        What waits in the kernel's backlog -- connected, perhaps with a request
        already sent -- is accepted and served first: closing a listening
        socket would reset it, mid-request for its client.
        """
        sock, self.socket = self.socket, None
        if sock is None:
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(sock.fileno())
        self._accept_waiting(sock)
        sock.close()  # no await since the last accept: nothing waiting is reset
        self._closed_at = loop.time()
        if self._connecting:
            await asyncio.wait(self._connecting)

    async def settle(self, seconds: float) -> None:
        """Wait until ``seconds`` after the listener closed, if any connection is open.

        A connection accepted just before the listener closed may not have
        delivered its first request yet -- its client sent it right after
        connecting.  Closing idle connections sooner would cut that request
        off, unanswered, on a connection the client saw open.
        """
        if self._closed_at is None or not self.open:
            return
        remaining = self._closed_at + seconds - asyncio.get_running_loop().time()
        if remaining > 0:
            await asyncio.sleep(remaining)

    def drain(self) -> None:
        """From now on every kitpy Server's response says ``Connection: close``."""
        self.draining = True
        for handler in self.server.connections:
            if isinstance(handler, _Handler):
                handler.draining = True

    def flush_logs(self) -> None:
        """Log what the interval summaries hold now (on the way out)."""
        self._refusals.flush()
        self.malformed.flush()
        self._accept_errors.flush()


class _Handler(RequestHandler):
    """aiohttp's request handler, counted, with JSON errors.

    ``draining`` tells a kitpy Server to answer with ``Connection: close``;
    :meth:`closing` tells a long-lived response (an SSE stream) to end.
    """

    __slots__ = ("_closed", "_closing", "_connections", "_counted", "draining")

    def __init__(self, connections: Connections, **options: Any) -> None:
        super().__init__(connections.server, **options)
        self._connections = connections
        self._counted = True  # by Connections, when it accepted the connection
        self.draining = connections.draining
        self._closed = False  # close() was called: the server is shutting down
        self._closing: asyncio.Future[None] | None = None  # made when a stream asks

    def closing(self) -> asyncio.Future[None]:
        """A future done once the server shuts this connection down (``RunningApp.stop``).

        aiohttp waits up to the grace period for a response in flight, twice,
        then cancels it: a server-sent event stream ends at this instead, so a
        stop is not held up by streams that would never end by themselves.
        """
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_future()
            if self._closed:
                self._closing.set_result(None)
        return self._closing

    def close(self) -> None:
        """aiohttp's close (shutdown: no more requests on this connection); open streams end."""
        super().close()
        self._closed = True
        if self._closing is not None and not self._closing.done():
            self._closing.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._counted:
            self._counted = False
            self._connections.open -= 1
        super().connection_lost(exc)

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's error page, as kitpy's JSON error body and one log line per interval."""
        if request.writer.output_size > 0:  # as aiohttp: too late for another response
            raise ConnectionError("the response has started; cannot send an error instead")
        reason = type(exc).__name__ if exc is not None else HTTPStatus(status).phrase
        if status == 500:
            _log.error("a request handler failed: %s", reason, exc_info=exc)
            text = "internal error"
        elif status >= 500:
            _log.warning("answered %d: %s", status, reason)
            text = f"{status} {HTTPStatus(status).phrase}"
        else:
            self._connections.malformed.add(f"{status} {reason}")
            text = f"malformed HTTP request ({status} {HTTPStatus(status).phrase})"
        response = _json_error(status, text)
        response.force_close()
        return response


_ROOT_URL = URL("/")


def _paths_only(make_request: Callable[..., web.BaseRequest]) -> Callable[..., web.BaseRequest]:
    """``make_request``, with the targets that are not a path routed as ``/``.

    ``CONNECT host:port`` and ``OPTIONS *`` name no path, so aiohttp's router
    never tries a route for them (not even ``add_fallback``'s) and answers in
    plain text; as ``/`` they get the application's JSON 404 or 405 instead.
    A function call and a comparison per request.
    """

    def paths_only(
        message: Any, payload: Any, protocol: Any, writer: Any, task: Any
    ) -> web.BaseRequest:  # aiohttp's request-factory signature, spelled out: no *args tuple
        if message.method == "CONNECT" or message.path == "*":
            message = message._replace(path="/", url=_ROOT_URL)
        return make_request(message, payload, protocol, writer, task)

    return paths_only


def _json_error(status: int, message: str) -> web.Response:
    """kitpy's JSON error body for ``status``, the code the status maps to."""
    code = code_from_http_status(status).name
    return web.json_response({"error": {"code": code, "message": message}}, status=status)
