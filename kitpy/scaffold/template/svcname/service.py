"""The business logic of svcname: no transport, no middleware, just the service."""

from __future__ import annotations

from typing import Protocol

from kitpy import InvalidArgument

__all__ = ["BasicService", "Service"]


class Service(Protocol):
    """What svcname does.

    To add an operation: a method here, an endpoint in ``endpoints.py``, a route
    in ``transport_http.py`` and an rpc in the ``.proto`` and ``transport_grpc.py``.
    """

    async def hello(self, name: str) -> str:
        """Return a greeting for ``name``; raise ``InvalidArgument`` for ``""``."""
        ...


class BasicService:
    """The plain implementation of :class:`Service`. Replace the body with your logic."""

    async def hello(self, name: str) -> str:
        if not name:
            raise InvalidArgument("name must not be empty")  # -> HTTP 400 / INVALID_ARGUMENT
        return f"Hello, {name}!"
