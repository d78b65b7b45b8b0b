"""stringsvc over NATS request-reply: the same endpoints and JSON bodies as over HTTP.

Subjects ``stringsvc.uppercase`` and ``stringsvc.count`` take ``{"s": "hello"}``
and reply ``{"v": "HELLO"}`` / ``{"v": 5}``; an error reply carries the header
``Kit-Code`` (e.g. ``INVALID_ARGUMENT``) and the HTTP JSON error body.  Every
instance subscribes in the queue group ``stringsvc``, so each request is
answered once.  Run with ``--nats nats://127.0.0.1:4222``::

    nats request stringsvc.uppercase '{"s": "hello"}'
"""

from __future__ import annotations

from typing import Unpack

import nats.aio.client
from nats.aio.msg import Msg

from kitpy.lifecycle import Lifecycle
from kitpy.lifecycle.nats import serve_nats
from kitpy.transport.nats import Server, ServerOptions

from .endpoints import Endpoints
from .transport_messages import json_servers

__all__ = ["QUEUE", "serve_stringsvc_nats"]

QUEUE = "stringsvc"


def _body(msg: Msg) -> bytes:
    return msg.data


async def serve_stringsvc_nats(
    life: Lifecycle,
    nc: nats.aio.client.Client,
    endpoints: Endpoints,
    **options: Unpack[ServerOptions],
) -> None:
    """Serve Uppercase and Count on their subjects under ``life``."""
    servers = json_servers(Server, endpoints, _body, **options)
    for subject, server in servers.items():
        await serve_nats(life, nc, subject, server, queue=QUEUE)
