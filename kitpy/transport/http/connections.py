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
* **Drain.**  After :meth:`Connections.drain`, every response says
  ``Connection: close``, so a client finishes its request and opens its next
  connection elsewhere instead of sending it on a connection about to close.

The request handler is aiohttp's :class:`aiohttp.web_protocol.RequestHandler`
with those three overrides; everything else (parsing, keep-alive, the idle
timeout) is aiohttp's.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

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
            _log.warning(self._what + detail, self._count)
            self._count = 0
        self._last = time.monotonic() if now is None else now


class _Refused(asyncio.Protocol):
    """A connection over the cap: answered 503 at once and closed, its bytes never read."""

    _RESPONSE = _error_bytes(503, "the server has too many open connections; retry")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self._RESPONSE)
        transport.close()


class Connections:
    """The protocol factory :func:`~kitpy.transport.http.start_app` listens with.

    ``server`` is the aiohttp low-level server an ``AppRunner`` made (its
    ``runner.server``); ``handler_options`` go to each connection's request
    handler (``keepalive_timeout``, ``max_field_size``, ...).  ``open`` is the
    number of connections open now, ``refused`` how many the cap turned away.

    Example (what ``start_app`` does)::

        connections = Connections(runner.server, max_connections=1000)
        listener = await loop.create_server(connections, "127.0.0.1", 8080)
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
        self.server = server
        self.max_connections = max_connections
        self.open = 0
        self.refused = 0
        self.draining = False
        self._options = handler_options
        self._refusals = _Tally(
            f"refused %d connection(s) over the limit of {max_connections} open connections",
            log_interval,
        )
        self.malformed = _Tally("answered %d request(s) that did not parse as HTTP", log_interval)

    def __call__(self) -> asyncio.Protocol:
        if self.open >= self.max_connections:
            self.refused += 1
            self._refusals.add()
            return _Refused()
        return _Handler(self, loop=asyncio.get_running_loop(), **self._options)

    def drain(self) -> None:
        """From now on every response says ``Connection: close``."""
        self.draining = True

    def flush_logs(self) -> None:
        """Log what the interval summaries hold now (on the way out)."""
        self._refusals.flush()
        self.malformed.flush()


class _Handler(RequestHandler):
    """aiohttp's request handler, counted, with JSON errors and ``Connection: close`` in drain."""

    __slots__ = ("_connections", "_counted")

    def __init__(self, connections: Connections, **options: Any) -> None:
        super().__init__(connections.server, **options)
        self._connections = connections
        self._counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._connections.open += 1
        self._counted = True
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._counted:
            self._counted = False
            self._connections.open -= 1
        super().connection_lost(exc)

    async def finish_response(
        self, request: Any, resp: web.StreamResponse, start_time: float | None
    ) -> Any:
        if isinstance(resp, web.HTTPException) and resp.text == f"{resp.status}: {resp.reason}":
            resp = _json_error(resp.status, f"{resp.status} {resp.reason}")  # aiohttp's own text
        if self._connections.draining and not resp.prepared:
            resp.force_close()
        return await super().finish_response(request, resp, start_time)

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


def _json_error(status: int, message: str) -> web.Response:
    """kitpy's JSON error body for ``status``, the code the status maps to."""
    code = code_from_http_status(status).name
    return web.json_response({"error": {"code": code, "message": message}}, status=status)
