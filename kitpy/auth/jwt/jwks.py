"""A key source that fetches a JWKS URL with aiohttp (pyjwt's PyJWKClient blocks).

:class:`JWKS` keeps the keys of the last good fetch and refetches:

* when they are older than ``max_age`` (at the next verification that needs a key);
* when a token names an unknown ``kid`` -- at most once per ``cooldown`` seconds,
  so a flood of random ``kid`` s costs one fetch, not one per request.

Concurrent refreshes share one fetch.  Each waiting request waits at most until
its Context deadline (then DEADLINE_EXCEEDED); the fetch itself is bounded by
``fetch_timeout`` and keeps going for the other waiters.

When the JWKS server is down, answers non-200 (redirects are not followed), or
sends garbage (not JSON, not a JWKS, no usable key, more than ``max_bytes``), the
fetch counts as failed:

* keys from an earlier fetch stay in use (rotation pauses, service goes on), so
  tokens with a known ``kid`` verify and unknown ones are ``unknown_key`` (401);
* with no keys at all, verification is impossible and the parser raises
  :class:`~kitpy.errors.Unavailable` (503, retryable) -- the token may well be
  valid, so the client should retry rather than drop it.

``last_error`` holds the last fetch failure for logs and health checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable

from kitpy._extras import require

require("aiohttp", extra="http")

import aiohttp

from kitpy.auth.jwt.keys import VerificationKey, parse_jwks
from kitpy.context import Context
from kitpy.errors import DeadlineExceeded, Unavailable

__all__ = ["JWKS"]


class JWKS:
    """Keys from a JWKS URL, fetched with the caller's ``aiohttp.ClientSession``.

    Example::

        async with aiohttp.ClientSession() as session:
            keys = JWKS("https://issuer.example/.well-known/jwks.json", session=session)
            parser = jwt_parser(keys, algorithms=["RS256"], issuer="https://issuer.example")
            ...
            await keys.close()

    ``clock`` is a monotonic clock for ages and cooldowns.
    """

    def __init__(
        self,
        url: str,
        *,
        session: aiohttp.ClientSession,
        max_age: float = 300.0,
        cooldown: float = 30.0,
        fetch_timeout: float = 5.0,
        max_bytes: int = 1 << 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if fetch_timeout <= 0 or max_age < 0 or cooldown < 0 or max_bytes <= 0:
            raise ValueError("fetch_timeout and max_bytes must be positive, the rest >= 0")
        self.url = url
        self._session = session
        self.max_age = max_age
        self.cooldown = cooldown
        self._timeout = aiohttp.ClientTimeout(total=fetch_timeout)
        self._max_bytes = max_bytes
        self._clock = clock
        self._keys: dict[str | None, VerificationKey] | None = None
        self._fetched_at = -math.inf
        self._attempted_at = -math.inf
        self._inflight: asyncio.Task[None] | None = None
        self.fetches = 0
        self.last_error: BaseException | None = None

    def _may_fetch(self, now: float) -> bool:
        return self._inflight is None and now - self._attempted_at >= self.cooldown

    def key_for(self, kid: str | None) -> VerificationKey | None:
        """The key for ``kid``, or None when it is unknown or the keys are due a refresh."""
        keys = self._keys
        if keys is None:
            return None
        now = self._clock()
        if now - self._fetched_at >= self.max_age and self._may_fetch(now):
            return None
        return keys.get(kid)

    async def refresh(self, ctx: Context) -> None:
        """Fetch the JWKS unless a fetch is running (then wait for it) or the cooldown holds.

        Raises :class:`Unavailable` when there are still no keys at all, and
        :class:`DeadlineExceeded` when ``ctx``'s deadline passes while waiting.
        """
        task = self._inflight
        if task is None and self._may_fetch(self._clock()):
            self._attempted_at = self._clock()
            task = self._inflight = asyncio.get_running_loop().create_task(self._fetch())
            task.add_done_callback(self._fetch_done)
        if task is not None:
            remaining = ctx.time_remaining()
            try:
                async with asyncio.timeout(remaining):
                    await asyncio.shield(task)
            except TimeoutError:
                raise DeadlineExceeded("deadline passed while fetching signing keys") from None
        if self._keys is None:
            raise Unavailable("signing keys are unavailable")

    def _fetch_done(self, task: asyncio.Task[None]) -> None:
        if self._inflight is task:
            self._inflight = None

    async def _fetch(self) -> None:
        self.fetches += 1
        try:
            async with self._session.get(
                self.url, timeout=self._timeout, allow_redirects=False
            ) as response:
                if response.status != 200:
                    raise ValueError(f"JWKS answered HTTP {response.status}")
                body = bytearray()
                async for chunk in response.content.iter_chunked(65536):
                    body += chunk
                    if len(body) > self._max_bytes:
                        raise ValueError(f"JWKS larger than {self._max_bytes} bytes")
            keys = parse_jwks(bytes(body))
        except Exception as exc:  # down, slow, garbage: all mean "no new keys"
            self.last_error = exc
            return
        self._keys = keys
        self._fetched_at = self._clock()
        self.last_error = None

    async def close(self) -> None:
        """Cancel a running fetch (the session stays open: it belongs to the caller)."""
        task = self._inflight
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
