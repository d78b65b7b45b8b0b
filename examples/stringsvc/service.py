"""The business logic of stringsvc: no transport, no middleware, just the service.

Every method takes the call's :class:`~kitpy.Context` first, as in Go kit: the
deadline, the caller's identity, the trace and the request id reach the logic,
and travel on when it calls another service (see ``proxy.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from kitpy import Context
from kitpy.errors import InvalidArgument

__all__ = ["BasicStringService", "EmptyString", "StringService"]


class EmptyString(InvalidArgument):
    """Raised when an operation needs a non-empty string (INVALID_ARGUMENT, HTTP 400)."""

    def __init__(self) -> None:
        super().__init__("empty string")


class StringService(Protocol):
    """Operations on strings."""

    async def uppercase(self, ctx: Context, s: str) -> str:
        """Return ``s`` in upper case; raise :class:`EmptyString` for ``""``."""
        ...

    async def count(self, ctx: Context, s: str) -> int:
        """Return the number of characters in ``s``."""
        ...

    def tokens(self, ctx: Context, s: str) -> AsyncIterator[str]:
        """Yield the words of ``s`` upper-cased, one at a time.

        Raises :class:`EmptyString` for ``""``.  A streaming method: implement it
        as an ``async def`` that yields (an async generator).
        """
        ...


class BasicStringService:
    """The plain implementation of :class:`StringService`."""

    async def uppercase(self, ctx: Context, s: str) -> str:
        if not s:
            raise EmptyString()
        return s.upper()

    async def count(self, ctx: Context, s: str) -> int:
        return len(s)

    async def tokens(self, ctx: Context, s: str) -> AsyncIterator[str]:
        if not s:
            raise EmptyString()
        for word in s.split():
            yield word.upper()
