"""The business logic of svcname: no transport, no middleware, just the service.

Every method takes the call's ``Context`` first: its deadline, the caller's
identity, the trace and the request id reach the logic, and travel on when it
calls another service.
"""

from __future__ import annotations

from typing import Protocol

from kitpy import Context, InvalidArgument

__all__ = ["BasicService", "Service"]


class Service(Protocol):
    """What svcname does.

    To add an operation: a method here, an endpoint in ``endpoints.py``, a route
    in ``transport_http.py`` and an rpc in the ``.proto`` and ``transport_grpc.py``.
    """

    async def hello(self, ctx: Context, name: str) -> str:
        """Return a greeting for ``name``; raise ``InvalidArgument`` for ``""``."""
        ...


class BasicService:
    """The plain implementation of :class:`Service`. Replace the body with your logic."""

    async def hello(self, ctx: Context, name: str) -> str:
        if not name:
            raise InvalidArgument("name must not be empty")  # -> HTTP 400 / INVALID_ARGUMENT
        return f"Hello, {name}!"
