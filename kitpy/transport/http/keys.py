"""Context keys the HTTP server fills, and the headers kitpy reads and writes.

The :class:`~kitpy.transport.http.Server` makes every key below readable on the
Context *before* the before funcs run, so before funcs, middleware and the
endpoint can read them::

    async def endpoint(ctx: Context, request: Req) -> Resp:
        log.info("call", route=ctx[ROUTE], peer=ctx[PEER])

The Server stores only the aiohttp request itself (:data:`REQUEST`) and a
request number; the method, path, route, headers and peer are *derived* keys
(see :class:`~kitpy.context.Key`), read off the request when asked for, so a
request costs nothing for the values nobody reads.  The transport-neutral
:data:`kitpy.context.REQUEST_ID` (the ``X-Request-Id`` header, or a new id)
and :data:`kitpy.context.OPERATION` (``"POST /users/{id}"``: the method and the
matched route, or the path when no route matched) are derived the same way.

Deadline header
---------------
``X-Timeout-Ms: <milliseconds>`` carries the caller's remaining time budget as a
non-negative decimal integer of milliseconds (at most 10 digits), e.g.
``X-Timeout-Ms: 250``.  It is *relative* (a budget, not a wall-clock instant), so
clock differences between hosts do not matter; only the network transit time is
not accounted for, which errs on the side of the server working slightly past
the caller's deadline.  The kitpy client sends it whenever the Context has a
deadline (rounded *up* to a whole millisecond), and the kitpy server puts it
back into the Context deadline, rejects a budget of ``0`` with 504 before
calling the endpoint, and answers a malformed value with 400.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web
from multidict import CIMultiDictProxy, istr

from kitpy.context import Context, Key
from kitpy.errors import InvalidArgument

__all__ = [
    "HEADERS",
    "METHOD",
    "PATH",
    "PEER",
    "REQUEST",
    "REQUEST_ID_HEADER",
    "ROUTE",
    "TIMEOUT_HEADER",
    "format_timeout",
    "incoming_request_id",
    "parse_timeout",
]

T = TypeVar("T")

REQUEST: Key[web.Request] = Key("http.request")
"""The aiohttp request being served; the keys below are read from it on demand."""


def _from_request(read: Callable[[web.Request], T | None]) -> Callable[[Context], T | None]:
    """A ``derive`` for a key whose value is read off the request, when the Context has one."""

    def derive(ctx: Context) -> T | None:
        request = ctx.get(REQUEST)
        return None if request is None else read(request)

    return derive


def _route_template(request: web.Request) -> str | None:
    resource = request.match_info.route.resource
    return None if resource is None else resource.canonical


METHOD: Key[str] = Key("http.method", derive=_from_request(lambda r: r.method))
"""The request method, e.g. ``"POST"``."""

PATH: Key[str] = Key("http.path", derive=_from_request(lambda r: r.path))
"""The request path (percent-decoded), e.g. ``"/users/42"``."""

ROUTE: Key[str] = Key("http.route", derive=_from_request(_route_template))
"""The route template the request matched, e.g. ``"/users/{id}"``; absent when unknown."""

HEADERS: Key[CIMultiDictProxy[str]] = Key("http.headers", derive=_from_request(lambda r: r.headers))
"""The request headers (read-only, case-insensitive)."""

PEER: Key[str] = Key("http.peer", derive=_from_request(lambda r: r.remote or ""))
"""The peer's address (IP for TCP), or ``""`` when the transport does not know it."""

TIMEOUT_HEADER = "X-Timeout-Ms"
"""The header that carries the caller's remaining time budget in milliseconds."""

REQUEST_ID_HEADER = "X-Request-Id"
"""The header a request id is read from, and sent back in on every response."""

_MAX_REQUEST_ID = 128
_REQUEST_ID_KEY = istr(REQUEST_ID_HEADER)  # an istr: the lookup skips folding the key's case


def incoming_request_id(headers: CIMultiDictProxy[str]) -> str | None:
    """The caller's ``X-Request-Id`` if it is usable as an id, else None.

    Usable: non-empty, ASCII (other bytes arrive surrogate-escaped and break
    JSON logs and response headers) and at most 128 characters.

    Example::

        incoming_request_id(request.headers) or make_one()
    """
    request_id = headers.get(_REQUEST_ID_KEY)
    if request_id and len(request_id) <= _MAX_REQUEST_ID and request_id.isascii():
        return request_id
    return None


_MAX_TIMEOUT_DIGITS = 10
_MAX_TIMEOUT_MS = 10**_MAX_TIMEOUT_DIGITS - 1


def parse_timeout(value: str) -> float:
    """Parse an ``X-Timeout-Ms`` value into seconds; raise InvalidArgument if malformed.

    Example::

        parse_timeout("250")   # 0.25
    """
    if not (value.isascii() and value.isdigit()) or len(value) > _MAX_TIMEOUT_DIGITS:
        raise InvalidArgument(
            f"invalid {TIMEOUT_HEADER} header {value[:32]!r}: "
            "expected a non-negative integer number of milliseconds"
        )
    return int(value) / 1000.0


def format_timeout(seconds: float) -> str:
    """Format a remaining budget for ``X-Timeout-Ms``, rounding up to a whole millisecond.

    A budget the header cannot hold (over ten digits, about 115 days, or
    infinite) is sent as the largest value it can, which :func:`parse_timeout` accepts.

    Example::

        format_timeout(0.0101)   # "11"
    """
    ms = seconds * 1000.0
    if not ms < _MAX_TIMEOUT_MS:  # also infinity (and NaN): never an unparseable header
        return str(_MAX_TIMEOUT_MS)
    return str(max(0, math.ceil(ms)))
