"""Call a running stringsvc over gRPC or HTTP.

Usage::

    python -m examples.stringsvc.cli uppercase hello --transport grpc
    python -m examples.stringsvc.cli count "go kit" --transport http --addr 127.0.0.1:8080
    python -m examples.stringsvc.cli uppercase hi --jwt-secret "$SECRET"   # signs a token
    python -m examples.stringsvc.cli tokens "go kit rocks"   # a stream: one word per line

Prints the result (for ``tokens``, each word as it arrives); on an error prints
``CODE: message`` to stderr and exits 1.
The client side is the same ``Endpoints`` set the service is built from, so
this is also the template for calling stringsvc from another service.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence

from kitpy import Context, GenericMiddleware, KitError
from kitpy.endpoint.stream import lift

from .endpoints import Endpoints

__all__ = ["call", "main"]

DEFAULT_ADDRS = {"grpc": "127.0.0.1:8081", "http": "127.0.0.1:8080"}


async def _invoke(
    svc: Endpoints, ctx: Context, method: str, s: str, out: Callable[[str], None]
) -> str | int | None:
    if method == "uppercase":
        return await svc.uppercase(ctx, s)
    if method == "tokens":  # a server stream: each word is handed to ``out`` as it arrives
        async for word in svc.tokens(ctx, s):
            out(word)
        return None
    return await svc.count(ctx, s)


# The claims the service requires: ISSUER and AUDIENCE in __main__ (not imported from
# there, since that would load the whole server into the CLI).
ISSUER = "stringsvc-auth"
AUDIENCE = "stringsvc"


def _signer(jwt_secret: str | None) -> GenericMiddleware | None:
    """A JWT signer (HS256; ``iss``, ``aud`` and a 60 s ``exp`` as the service requires)."""
    if jwt_secret is None:
        return None
    from kitpy.auth.jwt import jwt_signer

    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "stringsvc-cli"}
    return jwt_signer(jwt_secret.encode(), algorithm="HS256", claims=claims, lifetime=60)


async def call(
    method: str,
    s: str,
    *,
    transport: str,
    addr: str,
    ctx: Context,
    jwt_secret: str | None = None,
    out: Callable[[str], None] = print,
) -> str | int | None:
    """Call ``method`` (``uppercase``, ``count``, ``tokens``) with ``s`` on the service at ``addr``.

    ``ctx`` carries the deadline (and anything client hooks read); with
    ``jwt_secret`` each call carries a freshly signed bearer token.  ``tokens``
    hands each word to ``out`` as it arrives and returns None.
    """
    signer = _signer(jwt_secret)
    stream_signer = None if signer is None else lift(signer)  # one token for the whole stream
    if transport == "grpc":
        import grpc.aio

        from kitpy.auth import context_to_grpc

        from .transport_grpc import make_grpc_client

        async with grpc.aio.insecure_channel(addr) as channel:
            grpc_client = make_grpc_client(
                channel,
                before=[context_to_grpc],
                middleware=signer,
                stream_middleware=stream_signer,
            )
            return await _invoke(grpc_client, ctx, method, s, out)

    import aiohttp

    from kitpy.auth import context_to_http

    from .transport_http import make_http_client

    async with aiohttp.ClientSession() as session:
        http_client = make_http_client(
            session,
            f"http://{addr}",
            before=[context_to_http],
            middleware=signer,
            stream_middleware=stream_signer,
        )
        return await _invoke(http_client, ctx, method, s, out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m examples.stringsvc.cli", description="Call a running stringsvc."
    )
    parser.add_argument(
        "method", choices=["uppercase", "count", "tokens"], help="the method to call"
    )
    parser.add_argument("s", help="the string argument")
    parser.add_argument("--transport", choices=["grpc", "http"], default="grpc")
    parser.add_argument("--addr", help="host:port of the service (default: 8081 gRPC, 8080 HTTP)")
    parser.add_argument("--timeout", type=float, default=5.0, help="deadline in seconds (5)")
    parser.add_argument(
        "--jwt-secret",
        default=os.environ.get("STRINGSVC_JWT_SECRET"),
        help="sign an HS256 token with this secret (env STRINGSVC_JWT_SECRET)",
    )
    args = parser.parse_args(argv)
    addr = args.addr or DEFAULT_ADDRS[args.transport]
    try:
        result = asyncio.run(
            call(
                args.method,
                args.s,
                transport=args.transport,
                addr=addr,
                ctx=Context().with_timeout(args.timeout),
                jwt_secret=args.jwt_secret,
            )
        )
    except KitError as err:
        print(f"{err.code.name}: {err.message}", file=sys.stderr)
        return 1
    if result is not None:  # tokens printed its words as they came
        print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
