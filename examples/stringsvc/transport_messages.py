"""What stringsvc's broker transports share: Uppercase and Count as JSON message Servers.

The bodies are the HTTP ones (``{"s": "hello"}`` -> ``{"v": "HELLO"}``); an
error reply carries ``Kit-Code`` and the HTTP JSON error body.  NATS serves
them on subjects and AMQP from queues, both named ``stringsvc.<operation>``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, Unpack

import msgspec

from kitpy import Context
from kitpy.transport.http import json_decoder
from kitpy.transport.messaging import ServerOptions

from .endpoints import CountRequest, Endpoints, UppercaseRequest

__all__ = ["json_servers"]

S = TypeVar("S")
M = TypeVar("M")
_encode = msgspec.json.Encoder().encode


def json_servers(
    server: Callable[..., S],
    endpoints: Endpoints,
    body: Callable[[M], bytes],
    **options: Unpack[ServerOptions],
) -> dict[str, S]:
    """``{"stringsvc.uppercase": ..., "stringsvc.count": ...}`` built with ``server``.

    ``server`` is a transport's Server class (NATS or AMQP); ``body`` reads a
    message's bytes; ``options`` go to each Server (hooks, ``authenticate``).
    """
    decode_upper = json_decoder(UppercaseRequest)
    decode_count = json_decoder(CountRequest)

    def encode(ctx: Context, response: Any) -> bytes:
        return _encode(response)

    def build(endpoint: Any, decode: Callable[[bytes], Any]) -> S:
        return server(endpoint, lambda ctx, msg: decode(body(msg)), encode, **options)

    return {
        "stringsvc.uppercase": build(endpoints.uppercase_endpoint, decode_upper),
        "stringsvc.count": build(endpoints.count_endpoint, decode_count),
    }
