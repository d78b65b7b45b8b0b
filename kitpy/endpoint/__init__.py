"""Endpoints and middleware: the whole contract of kitpy in a few lines.

An :class:`Endpoint` is any callable ``(ctx, request) -> awaitable response``,
usually an ``async def``.  A :data:`Middleware` takes an endpoint and returns
another one that wraps it.  :func:`chain` stacks middlewares, first argument
outermost, so ``chain(a, b, c)(ep)`` is ``a(b(c(ep)))``.

Example::

    def shout(next: Endpoint[str, str]) -> Endpoint[str, str]:
        async def endpoint(ctx: Context, request: str) -> str:
            return (await next(ctx, request)).upper()
        return endpoint

    @shout
    async def greet(ctx: Context, name: str) -> str:
        return f"hello {name}"

    assert await greet(Context(), "ada") == "HELLO ADA"
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, Protocol, TypeAlias, TypeVar, overload

from kitpy.context import Context

__all__ = [
    "Endpoint",
    "GenericMiddleware",
    "Middleware",
    "Req",
    "Resp",
    "chain",
    "endpoint_name",
    "failed",
    "keep_name",
    "named",
    "nop",
]

Req = TypeVar("Req")
"""Type variable for a request type, for writing generic middleware."""
Resp = TypeVar("Resp")
"""Type variable for a response type, for writing generic middleware."""
E = TypeVar("E")
Req_contra = TypeVar("Req_contra", contravariant=True)
Resp_co = TypeVar("Resp_co", covariant=True)


class Endpoint(Protocol[Req_contra, Resp_co]):
    """One RPC: ``(ctx, request) -> awaitable response``.

    Typed as "returns an awaitable" rather than "is a coroutine function", so a
    plain ``def`` layer that returns ``next(ctx, req)`` without awaiting (the
    cheapest kind of before-only middleware) is an Endpoint too.
    """

    def __call__(self, ctx: Context, request: Req_contra, /) -> Awaitable[Resp_co]: ...


Middleware: TypeAlias = Callable[[Endpoint[Req, Resp]], Endpoint[Req, Resp]]
"""A function from endpoint to endpoint that adds behaviour around it.

``Middleware[Req, Resp]`` fits one endpoint type.  Middlewares that fit every
endpoint (logging, metrics, breakers, ...) are typed :class:`GenericMiddleware`.
"""


class GenericMiddleware(Protocol):
    """A middleware that wraps an endpoint of any type and keeps its type.

    Factories such as ``call_logging(logger)`` return one, so the same
    value can wrap ``Endpoint[A, B]`` and ``Endpoint[C, D]`` and mypy still
    knows each result's type.  A plain generic function fits it::

        def passthrough(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
            return next
    """

    def __call__(self, next: Endpoint[Req, Resp], /) -> Endpoint[Req, Resp]: ...


@overload
def chain(outer: GenericMiddleware, /, *others: GenericMiddleware) -> GenericMiddleware: ...


@overload
def chain(
    outer: Middleware[Req, Resp], /, *others: Middleware[Req, Resp]
) -> Middleware[Req, Resp]: ...


def chain(outer: Middleware[Any, Any], /, *others: Middleware[Any, Any]) -> Middleware[Any, Any]:
    """Compose middlewares into one; the first argument is the outermost layer.

    The composition happens once, when the result is applied to an endpoint,
    so calling the wrapped endpoint costs exactly what the layers themselves
    cost.

    Example::

        stack = chain(logging, metrics, breaker)   # logging sees every call first
        endpoint = stack(make_uppercase_endpoint(svc))

    A layer that drops the endpoint's name (see :func:`named`) gets it back:
    every layer of a chain sees the name the innermost endpoint carries.
    """
    layers = (outer, *others)

    def middleware(next: Endpoint[Any, Any]) -> Endpoint[Any, Any]:
        for layer in reversed(layers):
            name = endpoint_name(next)
            next = layer(next)
            if name is not None and endpoint_name(next) is None:
                next = named(name)(next)
        return next

    return middleware


# -- endpoint names -----------------------------------------------------------------

_NAME = "kitpy_name"  # the attribute an endpoint's name is kept in


def endpoint_name(endpoint: object) -> str | None:
    """The operation name ``endpoint`` carries, or None when it has none.

    Logging, metrics and tracing name a call by it; without one they fall back
    to the operation the transport serves (:data:`kitpy.context.OPERATION`,
    the HTTP route or gRPC method), never to a Python function's name.
    """
    name = getattr(endpoint, _NAME, None)
    return name if isinstance(name, str) else None


def keep_name(endpoint: E, wrapped: object, *, name: str | None = None) -> E:
    """Give ``endpoint`` the name ``wrapped`` carries (if any) and return it.

    For middleware authors, the way ``functools.wraps`` is for decorators: the
    last line of a layer is ``return keep_name(endpoint, next)``.  A layer that
    takes a ``name=`` option passes it on (``keep_name(endpoint, next,
    name=name)``): the layer's own endpoint then carries that name instead,
    with no forwarding layer (:func:`named`) on top.

    Example::

        def shout(next: Endpoint[Req, str]) -> Endpoint[Req, str]:
            async def endpoint(ctx: Context, request: Req) -> str:
                return (await next(ctx, request)).upper()
            return keep_name(endpoint, next)
    """
    if name is None:
        name = endpoint_name(wrapped)
    elif not name:
        raise ValueError("an endpoint name must not be empty")
    if name is not None:
        setattr(endpoint, _NAME, name)
    return endpoint


def named(name: str) -> GenericMiddleware:
    """A middleware that gives an endpoint the operation name ``name``.

    The result is a one-line forwarding layer that carries the name (a plain
    function returning the endpoint's awaitable: no extra coroutine), so naming
    never changes the endpoint object itself -- the same function can be served
    under two names.  Every kitpy middleware keeps the name of the endpoint it wraps.

    Example::

        @named("uppercase")
        async def uppercase(ctx: Context, s: str) -> str:
            return s.upper()

        assert endpoint_name(call_logging(logger)(uppercase)) == "uppercase"
    """
    if not name:
        raise ValueError("an endpoint name must not be empty")

    def middleware(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        def forward(ctx: Context, request: Req) -> Awaitable[Resp]:
            return next(ctx, request)

        setattr(forward, _NAME, name)
        return forward

    return middleware


async def failed(error: BaseException) -> NoReturn:
    """An awaitable that raises ``error`` when awaited.

    A middleware that acts only before the call can be a plain ``def`` that
    returns ``next(ctx, request)`` -- the inner awaitable itself, with no
    coroutine of its own (about 2 k instructions a call less).  To refuse, it
    returns ``failed(error)``: the error then comes out of the caller's
    ``await``, as from an ``async def``, never out of the call itself.

    Example::

        def admins_only(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
            def endpoint(ctx: Context, request: Req) -> Awaitable[Resp]:
                if ctx.get(ROLE) != "admin":
                    return failed(PermissionDenied("admins only"))
                return next(ctx, request)
            return endpoint
    """
    raise error


async def nop(ctx: Context, request: Any) -> None:
    """An endpoint that does nothing and returns None; handy as a placeholder in tests."""
    return None
