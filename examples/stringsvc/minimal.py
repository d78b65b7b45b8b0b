"""stringsvc in one file: the smallest kitpy service worth copying (HTTP only).

Run it and call it::

    python -m examples.stringsvc.minimal --port 8080          # or STRINGSVC_PORT=8080
    curl -s -XPOST localhost:8080/uppercase -H 'Content-Type: application/json' -d '{"s": "hi"}'

The service takes the Context first, a named endpoint wraps each method, a
``Server`` serves each endpoint, and ``run`` stops gracefully on SIGTERM.  The
next step up is the rest of this folder: gRPC, observability, config, lifecycle.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

import msgspec
from aiohttp import web

from kitpy import Context, Endpoint, InvalidArgument, named
from kitpy.transport.http import Server, add_fallback, add_routes, decode_json, encode_json, run


class StringService:
    """The business logic: plain methods, the Context first."""

    async def uppercase(self, ctx: Context, s: str) -> str:
        if not s:
            raise InvalidArgument("empty string")  # -> 400 {"error": {"code": ...}}
        return s.upper()

    async def count(self, ctx: Context, s: str) -> int:
        return len(s)


class Request(msgspec.Struct, frozen=True):
    s: str


class UppercaseResponse(msgspec.Struct, frozen=True):
    v: str


class CountResponse(msgspec.Struct, frozen=True):
    v: int


def make_endpoints(svc: StringService) -> dict[str, Endpoint[Request, msgspec.Struct]]:
    """One named endpoint per method: ``(ctx, request) -> response``."""

    @named("uppercase")
    async def uppercase(ctx: Context, request: Request) -> UppercaseResponse:
        return UppercaseResponse(v=await svc.uppercase(ctx, request.s))

    @named("count")
    async def count(ctx: Context, request: Request) -> CountResponse:
        return CountResponse(v=await svc.count(ctx, request.s))

    return {"POST /uppercase": uppercase, "POST /count": count}


def make_app(svc: StringService) -> web.Application:
    """The routes, and JSON 404/405 answers for anything else."""
    app = web.Application()
    endpoints = make_endpoints(svc)
    add_routes(app, {r: Server(e, decode_json(Request), encode_json) for r, e in endpoints.items()})
    add_fallback(app)
    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.stringsvc.minimal")
    parser.add_argument("--host", default=os.environ.get("STRINGSVC_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("STRINGSVC_PORT", "8080")))
    args = parser.parse_args(argv)
    run(
        make_app(StringService()),
        host=args.host,
        port=args.port,
        on_start=lambda app: print(f"stringsvc: HTTP listening on {app.url}", flush=True),
    )


if __name__ == "__main__":
    main()
