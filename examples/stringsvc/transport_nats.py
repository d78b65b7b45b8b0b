"""stringsvc over NATS request-reply: the same endpoints and JSON bodies as over HTTP.

Subjects ``stringsvc.uppercase`` and ``stringsvc.count`` take ``{"s": "hello"}``
and reply ``{"v": "HELLO"}`` / ``{"v": 5}``; an error reply carries the header
``Kit-Code`` (e.g. ``INVALID_ARGUMENT``) and the HTTP JSON error body.  Every
instance subscribes in the queue group ``stringsvc``, so each request is
answered once.  Run with ``--nats nats://127.0.0.1:4222``::

    nats request stringsvc.uppercase '{"s": "hello"}'
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import nats.aio.client

from kitpy.lifecycle import Lifecycle
from kitpy.lifecycle.nats import serve_nats
from kitpy.transport.http import json_decoder
from kitpy.transport.nats import Server, ServerBefore, ServerFinalizer

from .endpoints import CountRequest, Endpoints, UppercaseRequest

__all__ = ["QUEUE", "SUBJECTS", "serve_stringsvc_nats"]

QUEUE = "stringsvc"
SUBJECTS = ("stringsvc.uppercase", "stringsvc.count")
_encode = msgspec.json.Encoder().encode


async def serve_stringsvc_nats(
    life: Lifecycle,
    nc: nats.aio.client.Client,
    endpoints: Endpoints,
    *,
    before: Sequence[ServerBefore] = (),
    finalizer: Sequence[ServerFinalizer] = (),
) -> None:
    """Serve Uppercase and Count on their subjects under ``life``."""
    decode_upper = json_decoder(UppercaseRequest)
    decode_count = json_decoder(CountRequest)
    uppercase = Server(
        endpoints.uppercase_endpoint,
        lambda ctx, msg: decode_upper(msg.data),
        lambda ctx, response: _encode(response),
        before=before,
        finalizer=finalizer,
    )
    count = Server(
        endpoints.count_endpoint,
        lambda ctx, msg: decode_count(msg.data),
        lambda ctx, response: _encode(response),
        before=before,
        finalizer=finalizer,
    )
    await serve_nats(life, nc, SUBJECTS[0], uppercase, queue=QUEUE)
    await serve_nats(life, nc, SUBJECTS[1], count, queue=QUEUE)
