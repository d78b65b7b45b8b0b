"""The business logic of stringsvc: no transport, no middleware, just the service."""

from __future__ import annotations

from typing import Protocol

from kitpy.errors import InvalidArgument

__all__ = ["BasicStringService", "EmptyString", "StringService"]


class EmptyString(InvalidArgument):
    """Raised when an operation needs a non-empty string (INVALID_ARGUMENT, HTTP 400)."""

    def __init__(self) -> None:
        super().__init__("empty string")


class StringService(Protocol):
    """Operations on strings."""

    async def uppercase(self, s: str) -> str:
        """Return ``s`` in upper case; raise :class:`EmptyString` for ``""``."""
        ...

    async def count(self, s: str) -> int:
        """Return the number of characters in ``s``."""
        ...


class BasicStringService:
    """The plain implementation of :class:`StringService`."""

    async def uppercase(self, s: str) -> str:
        if not s:
            raise EmptyString()
        return s.upper()

    async def count(self, s: str) -> int:
        return len(s)
