"""A one-endpoint "uppercase" service on kitpy's HTTP transport, for the sd tests.

``make_app(name)`` is the server (answers say which instance served them);
``http_factory(session)`` is the Endpointer factory a proxy uses: one kitpy
HTTP client endpoint per discovered instance, sharing one aiohttp session.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from aiohttp import web

from kitpy import Context, Endpoint
from kitpy.sd import Closer, Factory, Instance
from kitpy.transport.http import (
    Client,
    Server,
    add_routes,
    decode_json,
    decode_json_response,
    encode_json,
    encode_json_request,
)


@dataclass(frozen=True, slots=True)
class Upper:
    s: str


@dataclass(frozen=True, slots=True)
class Uppered:
    v: str
    by: str


def make_app(name: str) -> web.Application:
    async def uppercase(ctx: Context, request: Upper) -> Uppered:
        return Uppered(v=request.s.upper(), by=name)

    app = web.Application()
    add_routes(app, {"POST /uppercase": Server(uppercase, decode_json(Upper), encode_json)})
    return app


def http_factory(session: aiohttp.ClientSession) -> Factory[Upper, Uppered]:
    decode = decode_json_response(Uppered)

    def factory(instance: Instance) -> tuple[Endpoint[Upper, Uppered], Closer | None]:
        url = f"http://{instance.address}/uppercase"
        return Client(session, "POST", url, encode_json_request, decode), None

    return factory
