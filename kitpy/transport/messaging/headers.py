"""What kitpy puts in message headers on a broker (NATS, AMQP), and reading it back.

Requests carry ``X-Timeout-Ms`` (the caller's remaining deadline, as over
HTTP) and ``X-Request-Id``; an error reply carries ``Kit-Code`` (the
:class:`~kitpy.errors.Code` name) and ``X-Request-Id`` with the same JSON error
body as HTTP: ``{"error": {"code": "INVALID_ARGUMENT", "message": "..."}}``.
A successful reply carries only what the Server's ``after`` hooks add.
The W3C trace context travels in ``traceparent`` / ``tracestate`` through
kitpy.tracing's hooks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from kitpy.errors import Code, InvalidArgument, KitError, Unknown, from_code

__all__ = [
    "CODE_HEADER",
    "REQUEST_ID_HEADER",
    "TIMEOUT_HEADER",
    "error_body",
    "error_from_reply",
    "timeout_from_headers",
]

TIMEOUT_HEADER = "X-Timeout-Ms"
REQUEST_ID_HEADER = "X-Request-Id"
CODE_HEADER = "Kit-Code"

_encode = msgspec.json.Encoder().encode


class _WireError(msgspec.Struct):
    code: str = ""
    message: str = ""
    details: dict[str, Any] | None = None


class _WireBody(msgspec.Struct):
    error: _WireError


_decode_body = msgspec.json.Decoder(_WireBody).decode


def timeout_from_headers(headers: Mapping[str, str]) -> float | None:
    """The remaining time a request's ``X-Timeout-Ms`` grants, in seconds (None: no deadline).

    >>> timeout_from_headers({"X-Timeout-Ms": "250"})
    0.25
    """
    raw = headers.get(TIMEOUT_HEADER)
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 12:
        raise InvalidArgument(
            f"{TIMEOUT_HEADER} must be a whole number of milliseconds, got {raw[:40]!r}"
        )
    return int(raw) / 1000


def error_body(err: KitError) -> bytes:
    """The JSON error body sent with a ``Kit-Code`` reply (details left out if unencodable)."""
    error: dict[str, Any] = {"code": err.code.name, "message": err.message}
    if err.details:
        try:
            return _encode({"error": {**error, "details": dict(err.details)}})
        except (TypeError, ValueError, msgspec.EncodeError):
            pass
    return _encode({"error": error})


def error_from_reply(headers: Mapping[str, str], body: bytes) -> KitError | None:
    """The KitError a reply carries, or None for a successful reply.

    >>> err = error_from_reply({"Kit-Code": "NOT_FOUND"}, b'{"error": {"message": "no 7"}}')
    >>> type(err).__name__, err.message
    ('NotFound', 'no 7')
    """
    name = headers.get(CODE_HEADER)
    if name is None:
        return None
    code = Code.__members__.get(name)
    if code is None or code is Code.OK:
        return Unknown(f"reply with an unknown {CODE_HEADER}: {name[:40]!r}")
    try:
        wire = _decode_body(body).error
    except (msgspec.MsgspecError, RecursionError):
        return from_code(code, f"{code.name} (reply body not readable)")
    return from_code(code, wire.message[:1000], wire.details)
