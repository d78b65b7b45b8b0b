"""Context keys the HTTP server fills, and the headers kitpy reads and writes.

The :class:`~kitpy.transport.http.Server` sets every key below on the Context
*before* the before funcs run, so before funcs, middleware and the endpoint can
read them::

    async def endpoint(ctx: Context, request: Req) -> Resp:
        log.info("call", request_id=ctx[REQUEST_ID], peer=ctx[PEER])

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

from multidict import CIMultiDictProxy

from kitpy.context import REQUEST_ID, Key
from kitpy.errors import InvalidArgument

__all__ = [
    "HEADERS",
    "METHOD",
    "PATH",
    "PEER",
    "REQUEST_ID",
    "REQUEST_ID_HEADER",
    "ROUTE",
    "TIMEOUT_HEADER",
    "format_timeout",
    "parse_timeout",
]

METHOD: Key[str] = Key("http.method")
"""The request method, e.g. ``"POST"``."""

PATH: Key[str] = Key("http.path")
"""The request path (percent-decoded), e.g. ``"/users/42"``."""

ROUTE: Key[str] = Key("http.route")
"""The route template the request matched, e.g. ``"/users/{id}"``; absent when unknown."""

HEADERS: Key[CIMultiDictProxy[str]] = Key("http.headers")
"""The request headers (read-only, case-insensitive)."""

PEER: Key[str] = Key("http.peer")
"""The peer's address (IP for TCP), or ``""`` when the transport does not know it."""

# REQUEST_ID (the incoming ``X-Request-Id`` header, or a new id made by the server) is
# kitpy.context.REQUEST_ID, shared by every transport so middleware need not import one.

TIMEOUT_HEADER = "X-Timeout-Ms"
"""The header that carries the caller's remaining time budget in milliseconds."""

REQUEST_ID_HEADER = "X-Request-Id"
"""The header a request id is read from."""

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
