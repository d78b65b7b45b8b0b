"""A separate process for the shared-limit test: hit a Redis limit N times, print how many passed.

Run: ``python -m tests.ratelimit.redis_worker URL LIMIT NAMESPACE STRATEGY N``
"""

from __future__ import annotations

import asyncio
import sys
from typing import cast

from kitpy import Context
from kitpy.errors import RateLimited
from kitpy.ratelimit import rate_limit
from kitpy.ratelimit.distributed import RedisRateLimiter, Strategy


async def main(url: str, limit: str, namespace: str, strategy: str, n: int) -> int:
    limiter = RedisRateLimiter.from_url(
        url, limit, namespace=namespace, strategy=cast(Strategy, strategy), timeout=5.0
    )

    async def work(ctx: Context, request: int) -> int:
        return request

    ep = rate_limit(limiter, key=lambda ctx, req: "shared")(work)
    admitted = 0
    try:
        for i in range(n):
            try:
                await ep(Context(), i)
                admitted += 1
            except RateLimited:
                pass
    finally:
        await limiter.aclose()
    return admitted


if __name__ == "__main__":
    url, limit, namespace, strategy, n = sys.argv[1:6]
    print(asyncio.run(main(url, limit, namespace, strategy, int(n))))
