"""A bounded cache of verified tokens, so a repeated token costs microseconds.

Verifying a JWT costs tens to hundreds of microseconds, while real clients send
the same token for minutes.  :class:`TokenCache` remembers *successful*
verifications only, keyed by the exact token string.  Each entry stores the
window in which the token is valid (from ``max(nbf, iat) - leeway`` to
``exp + leeway``), clipped to ``max_ttl`` seconds after it was stored, and every
hit re-checks that window against the clock, so an entry never outlives the
token: a cached token expires at exactly the moment an uncached one would.
Audience and issuer are fixed per parser, so each parser owns its cache.

Admission: a token is stored the *second* time it is verified (a "doorkeeper"
remembers the hashes of tokens seen once).  Tokens used once -- a client that
signs per request, a flood of distinct tokens -- then cost nothing to cache and
cannot push the tokens that are reused out of it; a reused token pays one extra
verification in its lifetime.  ``admit_on_first_use=True`` stores at once.

The cache is bounded: when full, the oldest entry is dropped (FIFO).  It is not
thread-safe; like the rest of kitpy it lives on one event loop.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["TokenCache"]

C = TypeVar("C")


class TokenCache(Generic[C]):
    """Verified claims by token string, each valid in a ``[not_before, expires_at)`` window.

    ``clock`` is wall-clock seconds (``time.time``), the scale of ``exp``.
    ``max_size=0`` disables caching.  ``hits`` and ``misses`` count lookups.

    Example::

        cache = TokenCache[dict](clock=time.time, max_size=1000, admit_on_first_use=True)
        cache.store(token, claims, -math.inf, claims["exp"], time.time())
        cache.lookup(token)   # claims, until exp
    """

    __slots__ = ("_admit", "_clock", "_entries", "_seen", "hits", "max_size", "max_ttl", "misses")

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        max_size: int = 4096,
        max_ttl: float = 300.0,
        admit_on_first_use: bool = False,
    ) -> None:
        if max_size < 0 or max_ttl < 0:
            raise ValueError("max_size and max_ttl must not be negative")
        self._clock = clock
        self._entries: OrderedDict[str, tuple[C, float, float]] = OrderedDict()
        self._seen: set[int] = set()
        self._admit = admit_on_first_use
        self.max_size = max_size
        self.max_ttl = max_ttl
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, token: object) -> bool:
        return token in self._entries

    def lookup(self, token: str) -> C | None:
        """The cached claims for ``token`` if it is still inside its window, else None.

        An entry found outside its window is dropped.
        """
        entry = self._entries.get(token)
        if entry is not None:
            now = self._clock()
            if entry[1] <= now < entry[2]:
                self.hits += 1
                return entry[0]
            del self._entries[token]
        self.misses += 1
        return None

    def store(
        self, token: str, claims: C, not_before: float, expires_at: float, now: float
    ) -> None:
        """Offer a verified token, valid in ``[not_before, expires_at)``, verified at ``now``.

        Stored on its second offer (or the first, with ``admit_on_first_use``); the
        entry's end is clipped to ``now + max_ttl``.  Times are wall-clock seconds.
        """
        if self.admit(token):
            self.put(token, claims, not_before, expires_at, now)

    def admit(self, token: str) -> bool:
        """Count an offer of ``token``: True when it is to be stored now (see :meth:`store`).

        Lets a caller build what it stores only for the tokens that will be kept.
        """
        max_size = self.max_size
        if max_size == 0:
            return False
        if self._admit:
            return True
        seen = self._seen
        key = hash(token)  # a collision only admits a token early: harmless
        if key in seen:
            seen.discard(key)
            return True
        if len(seen) >= max_size:
            seen.clear()
        seen.add(key)
        return False

    def put(self, token: str, claims: C, not_before: float, expires_at: float, now: float) -> None:
        """Store ``token`` now, whatever :meth:`admit` would say (the oldest entry makes room)."""
        entries = self._entries
        if len(entries) >= self.max_size:
            entries.popitem(last=False)
        entries[token] = (claims, not_before, min(expires_at, now + self.max_ttl))

    def clear(self) -> None:
        """Forget every entry (e.g. after revoking a key)."""
        self._entries.clear()
        self._seen.clear()
