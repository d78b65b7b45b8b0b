"""Run stringsvc: ``python -m examples.stringsvc``.

Until the transports are wired in, this runs a short in-process demo: it
builds the endpoints with a timing middleware and calls them directly.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence

from kitpy import Context, Endpoint, KitError
from kitpy.endpoint import Req, Resp

from .endpoints import make_endpoints
from .service import BasicStringService


def timing(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
    """Print how long each call took."""

    async def endpoint(ctx: Context, request: Req) -> Resp:
        start = time.perf_counter()
        try:
            return await next(ctx, request)
        finally:
            print(f"  {request!r} took {(time.perf_counter() - start) * 1e6:.1f} us")

    return endpoint


async def demo(words: Sequence[str]) -> None:
    eps = make_endpoints(BasicStringService(), middleware=timing)
    for word in words:
        try:
            print(f"uppercase({word!r}) = {await eps.uppercase(word)!r}")
        except KitError as err:
            print(f"uppercase({word!r}) failed: {err.code.name}: {err.message}")
        print(f"count({word!r}) = {await eps.count(word)}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.stringsvc", description=__doc__)
    parser.add_argument("words", nargs="*", default=["hello", "kitpy", ""], help="words to process")
    args = parser.parse_args(argv)
    asyncio.run(demo(args.words))


if __name__ == "__main__":
    main()
