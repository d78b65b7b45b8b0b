"""Server-sent events on the wire: the :class:`Event`, its encoding, and a bounded parser.

The ``text/event-stream`` format (WHATWG HTML, "Server-sent events"): UTF-8
lines ending in CRLF, LF or CR; a blank line ends an event; a line
``field: value`` sets a field (one space after the colon is dropped; none is
fine too); a line starting with ``:`` is a comment (kitpy's heartbeat is
``: ping``); ``data`` lines accumulate, joined with ``\\n``::

    id: 7
    event: tick
    data: {"n": 7}

:meth:`Event.encode` writes one event; :class:`SseParser` reads them back
from bytes as they arrive, in whatever chunks, and refuses an event (or a
line) over ``max_event_size`` (default :data:`DEFAULT_MAX_EVENT_SIZE`, 1 MiB)
with ``Unavailable`` naming the limit, so an upstream cannot grow a client's
memory without bound.

The server side is :class:`~kitpy.transport.http.SseServer`, the client side
:func:`~kitpy.transport.http.sse_events` and :class:`~kitpy.transport.http.SseClient`.
A kitpy server ends a failed stream with an event named ``error`` whose data
is the JSON error body of every kitpy HTTP error (``{"error": {"code": ...,
"message": ...}}``); :func:`stream_error` turns it back into the ``KitError``.

Example::

    parser = SseParser()
    events = parser.feed(b"id: 1\\ndata: one\\ndata: two\\n\\n: ping\\n")
    assert events == [Event("one\\ntwo", id="1")]
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias, TypeVar

import msgspec

from kitpy.context import Context
from kitpy.errors import Code, KitError, Unavailable, Unknown, http_status
from kitpy.transport.http.errors import decode_error

__all__ = [
    "DEFAULT_MAX_EVENT_SIZE",
    "ERROR_EVENT",
    "LAST_EVENT_ID_HEADER",
    "DecodeEvent",
    "EncodeEvent",
    "Event",
    "SseParser",
    "encode_data",
    "stream_error",
]

T = TypeVar("T")

DEFAULT_MAX_EVENT_SIZE = 1024 * 1024
"""The largest event (or line) an SSE client reads by default: 1 MiB of its lines' bytes."""

LAST_EVENT_ID_HEADER = "Last-Event-ID"
"""The header a reconnecting client names the last event it got in."""

ERROR_EVENT = "error"
"""The event name a kitpy server ends a failed stream with; its data is the JSON error body."""

_MESSAGE = "message"  # the event type of an event that names none


@dataclass(frozen=True, slots=True)
class Event:
    """One server-sent event.

    * ``data`` -- the event's data (several ``data`` lines join with ``\\n``).
    * ``event`` -- its type, ``"message"`` unless the stream named one.
    * ``id`` -- on the server, the id to send with this event (None: none);
      in a client, the last id the stream has set, as of this event (what
      to send as ``Last-Event-ID`` to resume after it, as a browser's
      ``lastEventId``); None when none was set (or an empty ``id:`` reset it).
    * ``retry`` -- on the server, a reconnection time to send, in
      milliseconds; in a client, the last one the stream sent (None: none).

    Example::

        Event('{"n": 7}', event="tick", id="7").encode()
        # b'id: 7\\nevent: tick\\ndata: {"n": 7}\\n\\n'
    """

    data: str
    event: str = _MESSAGE
    id: str | None = None
    retry: int | None = None

    def encode(self) -> bytes:
        """The event as ``text/event-stream`` bytes, ending with the blank line that sends it.

        Raises ``ValueError`` for what the format cannot carry: a line break in
        ``id`` or ``event``, a NUL in ``id``, a negative ``retry``.
        """
        head = ""
        if self.id is not None:
            if _BREAKS.search(self.id) or "\0" in self.id:
                raise ValueError(f"an event id cannot hold a line break or NUL: {self.id[:40]!r}")
            head += f"id: {self.id}\n"
        if self.event != _MESSAGE:
            if not self.event or _BREAKS.search(self.event):
                raise ValueError(f"invalid event name {self.event[:40]!r}")
            head += f"event: {self.event}\n"
        if self.retry is not None:
            if self.retry < 0:
                raise ValueError(f"retry must be >= 0 milliseconds, got {self.retry}")
            head += f"retry: {int(self.retry)}\n"
        return head.encode() + encode_data(self.data)


_BREAKS = re.compile(r"\r\n|\r|\n")
_BYTE_BREAKS = re.compile(rb"\r\n?|\n")
_BOM = b"\xef\xbb\xbf"


def encode_data(data: str | bytes) -> bytes:
    """``data`` as an event with no id or name: its ``data:`` lines and the blank line after.

    Data without a line break (JSON never has one) is one line; ``bytes`` must be UTF-8.

    Example::

        encode_data("a\\nb")   # b'data: a\\ndata: b\\n\\n'
    """
    raw = data.encode() if isinstance(data, str) else data
    if b"\n" not in raw and b"\r" not in raw:
        return b"data: " + raw + b"\n\n"
    return b"".join(b"data: " + line + b"\n" for line in _BYTE_BREAKS.split(raw)) + b"\n"


EncodeEvent: TypeAlias = Callable[[Context, T], "str | bytes | Event"]
"""An :class:`~kitpy.transport.http.SseServer`'s encoder: a response to an event's data
(``str`` or UTF-8 ``bytes``), or to a whole :class:`Event` to give it an id, name or retry."""

DecodeEvent: TypeAlias = Callable[[Context, Event], T]
"""An :class:`~kitpy.transport.http.SseClient`'s decoder: an event to the response it yields."""


class SseParser:
    """Reads ``text/event-stream`` bytes, fed as they arrive, into :class:`Event` values.

    Follows the WHATWG parsing rules: CRLF, LF and CR all end a line (a CRLF
    split across two chunks too), a leading BOM is skipped, comments and
    unknown fields are ignored, ``id`` and ``retry`` persist from event to
    event, a ``retry`` that is not all digits and an ``id`` holding NUL are
    ignored, an event with no ``data`` line is not dispatched, and an event
    cut off by the end of the stream is dropped (call nothing at the end).
    Undecodable UTF-8 becomes U+FFFD.

    ``max_event_size`` bounds the bytes of one event's lines, and of any one
    line (a comment too); over it :meth:`feed` raises ``Unavailable`` naming
    the limit.

    Example::

        parser = SseParser(max_event_size=64 * 1024)
        assert parser.feed(b"data: a\\r") == []
        assert parser.feed(b"\\n\\r\\n") == [Event("a")]
    """

    __slots__ = (
        "_data",
        "_event",
        "_event_size",
        "_id",
        "_line",
        "_max",
        "_retry",
        "_skip_lf",
        "_started",
    )

    def __init__(self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        if max_event_size < 1:
            raise ValueError(f"max_event_size must be >= 1, got {max_event_size}")
        self._max = max_event_size
        self._line = bytearray()  # the start of a line whose end has not arrived
        self._skip_lf = False  # the last chunk ended in CR: an LF starting the next is its CRLF
        self._started = False  # past the optional BOM
        self._data: list[str] = []
        self._event = ""
        self._event_size = 0  # bytes of the current event's lines so far
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        """Parse the next bytes of the stream; return the events they completed."""
        events: list[Event] = []
        pos = 0
        size = len(chunk)
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                pos = 1
        while pos < size:
            match = _BYTE_BREAKS.search(chunk, pos)
            if match is None:
                self._line += chunk[pos:]
                self._check(len(self._line))
                break
            if self._line:
                self._line += chunk[pos : match.start()]
                line = bytes(self._line)
                self._line.clear()
            else:
                line = chunk[pos : match.start()]
            pos = match.end()
            if pos == size and match.group() == b"\r":
                self._skip_lf = True
            self._take(line, events)
        return events

    def _check(self, line_size: int) -> None:
        if line_size + self._event_size > self._max:
            raise Unavailable(
                f"upstream event over {self._max} bytes (max_event_size); the stream is dropped"
            )

    def _take(self, raw: bytes, events: list[Event]) -> None:
        """Process one complete line."""
        if not self._started:
            self._started = True
            if raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
        if not raw:  # a blank line: dispatch
            if self._data:
                data = "\n".join(self._data)
                events.append(Event(data, self._event or _MESSAGE, self._id, self._retry))
            self._data = []
            self._event = ""
            self._event_size = 0
            return
        self._check(len(raw))
        if raw[0] == 0x3A:  # ":": a comment
            return
        self._event_size += len(raw)
        line = raw.decode("utf-8", "replace")
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value or None
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)


class _WireError(msgspec.Struct):
    code: str


class _WireBody(msgspec.Struct):
    error: _WireError


_decode_code = msgspec.json.Decoder(_WireBody).decode


def stream_error(data: str) -> KitError:
    """The ``KitError`` an ``error`` event's data stands for (a kitpy JSON error body).

    The code's subclass with the message relayed as a client relays an HTTP
    error's (one line, capped; see :func:`~kitpy.transport.http.decode_error`);
    data that is not a kitpy error body is ``Unknown``.

    Example::

        err = stream_error('{"error": {"code": "NOT_FOUND", "message": "no topic 7"}}')
        assert isinstance(err, NotFound) and err.message == "no topic 7"
    """
    raw = data.encode()
    try:
        code = Code.__members__.get(_decode_code(raw).error.code)
    except (msgspec.MsgspecError, RecursionError):
        code = None
    if code is None or code is Code.OK:
        return Unknown("the upstream's stream failed (its error event could not be read)")
    return decode_error(http_status(code), raw)
