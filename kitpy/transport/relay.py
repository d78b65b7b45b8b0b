"""What a Client passes on from its upstream: bounded, printable messages and one size error.

An upstream is not trusted.  Its error message goes into the ``KitError`` a
Client raises, and from there into logs and, through a proxy, to another
caller; its response is read into memory.  So every kitpy Client:

* relays an upstream's error message through :func:`relayed_message`: control
  characters and line breaks become spaces, and the text is cut to
  :data:`MAX_RELAYED_MESSAGE` characters (ending in ``…``);
* refuses a response over its size limit with :func:`response_too_large`: an
  ``Unavailable`` (HTTP 503, retryable -- another instance may answer
  properly) whose message names the limit and the option that sets it.

Example::

    relayed_message("line one\\nline two")        # 'line one line two'
    response_too_large(4 * 1024 * 1024, option="max_response_size").message
    # 'upstream response over 4 MiB (max_response_size)'

Standard library only: both the HTTP and the gRPC transport use it.
"""

from __future__ import annotations

from kitpy.errors import Unavailable

__all__ = ["MAX_RELAYED_MESSAGE", "relayed_message", "response_too_large"]

MAX_RELAYED_MESSAGE = 512
"""The longest upstream error message a Client relays, in characters (longer ones are cut)."""

_ELLIPSIS = "…"


def relayed_message(text: str, *, limit: int = MAX_RELAYED_MESSAGE) -> str:
    """``text`` made safe to relay: one printable line of at most ``limit`` characters.

    Every character that is not printable (control characters, line and
    paragraph separators, format characters such as bidi overrides, lone
    surrogates) becomes a space, runs of white space become one space, and
    text over ``limit`` is cut to ``limit - 1`` characters plus ``…``.

    Example::

        relayed_message("no user\\r\\n\\x1b[31m7")   # 'no user [31m7'
        len(relayed_message("x" * 10_000))          # 512
    """
    if len(text) <= limit and text.isprintable():
        return text  # the common case: nothing to do
    text = text[: 4 * limit]  # bound the work: only the start can survive the cut
    cleaned = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    if len(cleaned) > limit:
        cleaned = cleaned[: max(limit - 1, 0)].rstrip() + _ELLIPSIS
    return cleaned


def _size(limit: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if limit >= size and limit % size == 0:
            return f"{limit // size} {unit}"
    return f"{limit} bytes"


def response_too_large(limit: int, *, option: str) -> Unavailable:
    """The error for an upstream response over ``limit`` bytes, naming the ``option`` that sets it.

    UNAVAILABLE: the upstream misbehaved (a server fault, counted by breakers),
    and a retry on another instance may get a proper answer.

    Example::

        response_too_large(65536, option="max_response_size").message
        # 'upstream response over 64 KiB (max_response_size)'
    """
    return Unavailable(f"upstream response over {_size(limit)} ({option})")
