"""Call a running stringsvc over gRPC or HTTP.

Usage::

    python -m examples.stringsvc.cli uppercase hello --transport grpc
    python -m examples.stringsvc.cli count "go kit" --transport http --addr 127.0.0.1:8080

Prints the result; on an error prints ``CODE: message`` to stderr and exits 1.
The client side is the same ``Endpoints`` set the service is built from, so
this is also the template for calling stringsvc from another service.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import replace

from kitpy import Context, KitError

from .endpoints import Endpoints

__all__ = ["call", "main"]

DEFAULT_ADDRS = {"grpc": "127.0.0.1:8081", "http": "127.0.0.1:8080"}


async def _invoke(endpoints: Endpoints, method: str, s: str) -> str | int:
    if method == "uppercase":
        return await endpoints.uppercase(s)
    return await endpoints.count(s)


async def call(method: str, s: str, *, transport: str, addr: str, ctx: Context) -> str | int:
    """Call ``method`` (``uppercase`` or ``count``) with ``s`` on the service at ``addr``.

    ``ctx`` carries the deadline (and anything client hooks read).
    """
    if transport == "grpc":
        import grpc.aio

        from .transport_grpc import make_grpc_client

        async with grpc.aio.insecure_channel(addr) as channel:
            return await _invoke(replace(make_grpc_client(channel), ctx=ctx), method, s)

    import aiohttp

    from .transport_http import make_http_client

    async with aiohttp.ClientSession() as session:
        return await _invoke(
            replace(make_http_client(session, f"http://{addr}"), ctx=ctx), method, s
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m examples.stringsvc.cli", description="Call a running stringsvc."
    )
    parser.add_argument("method", choices=["uppercase", "count"], help="the method to call")
    parser.add_argument("s", help="the string argument")
    parser.add_argument("--transport", choices=["grpc", "http"], default="grpc")
    parser.add_argument("--addr", help="host:port of the service (default: 8081 gRPC, 8080 HTTP)")
    parser.add_argument("--timeout", type=float, default=5.0, help="deadline in seconds (5)")
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
            )
        )
    except KitError as err:
        print(f"{err.code.name}: {err.message}", file=sys.stderr)
        return 1
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
