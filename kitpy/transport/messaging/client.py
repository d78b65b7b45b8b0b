"""The broker-neutral client pieces: hook types and the headers every request starts with."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import TypeAlias, TypeVar

from kitpy.context import REQUEST_ID, Context
from kitpy.transport.messaging.headers import REQUEST_ID_HEADER

__all__ = ["ClientBefore", "ClientFinalizer", "EncodeRequest", "outgoing_headers"]

Req = TypeVar("Req")

ClientBefore: TypeAlias = Callable[[Context, MutableMapping[str, str]], Context]
"""Runs before sending; fills the outgoing headers; returns the Context to use."""
ClientFinalizer: TypeAlias = Callable[[Context, BaseException | None], None]
"""Runs last on every call with the exception raised, or None on success."""
EncodeRequest: TypeAlias = Callable[[Context, Req], bytes]
"""Turns the endpoint's request into the message body."""


def outgoing_headers(
    ctx: Context, before: Sequence[ClientBefore]
) -> tuple[Context, dict[str, str]]:
    """The headers a request starts with (its request id), then filled by ``before`` hooks."""
    headers: dict[str, str] = {}
    request_id = ctx.get(REQUEST_ID)
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    for hook in before:
        ctx = hook(ctx, headers)
    return ctx, headers
