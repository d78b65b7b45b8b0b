"""Endpoints and middleware: chain order, decorator use, nop."""

from __future__ import annotations

import pytest

from kitpy import Context, Endpoint, Key, NotFound, chain, failed, nop
from kitpy.endpoint import Middleware, Req, Resp

TAG: Key[str] = Key("tag")


def recorder(name: str, log: list[str]) -> Middleware[str, str]:
    def middleware(next: Endpoint[str, str]) -> Endpoint[str, str]:
        async def endpoint(ctx: Context, request: str) -> str:
            log.append(f"{name}>")
            response = await next(ctx, request)
            log.append(f"<{name}")
            return response

        return endpoint

    return middleware


async def echo(ctx: Context, request: str) -> str:
    return request


async def test_chain_first_argument_is_outermost() -> None:
    log: list[str] = []
    stack = chain(recorder("a", log), recorder("b", log), recorder("c", log))
    endpoint = stack(echo)
    assert await endpoint(Context(), "x") == "x"
    assert log == ["a>", "b>", "c>", "<c", "<b", "<a"]


async def test_chain_of_one_is_the_middleware_itself() -> None:
    log: list[str] = []
    assert await chain(recorder("only", log))(echo)(Context(), "y") == "y"
    assert log == ["only>", "<only"]


async def test_chained_endpoint_can_be_called_many_times() -> None:
    log: list[str] = []
    endpoint = chain(recorder("a", log), recorder("b", log))(echo)
    for _ in range(3):
        await endpoint(Context(), "z")
    assert log == ["a>", "b>", "<b", "<a"] * 3


def tagging(next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
    """A generic before-only layer written as a plain def (no await)."""

    def endpoint(ctx: Context, request: Req) -> object:
        return next(ctx.with_value(TAG, "tagged"), request)

    return endpoint  # type: ignore[return-value]


async def test_middleware_as_decorator_and_context_flows_inward() -> None:
    @tagging
    async def read_tag(ctx: Context, request: str) -> str:
        tag = ctx.get(TAG)
        return f"{request}:{tag}"

    assert await read_tag(Context(), "r") == "r:tagged"


async def test_errors_propagate_through_the_chain() -> None:
    log: list[str] = []

    async def failing(ctx: Context, request: str) -> str:
        raise ValueError("boom")

    endpoint = chain(recorder("a", log))(failing)
    with pytest.raises(ValueError, match="boom"):
        await endpoint(Context(), "x")
    assert log == ["a>"]


async def test_nop_returns_none() -> None:
    result = await nop(Context(), object())  # type: ignore[func-returns-value]
    assert result is None


async def test_failed_raises_when_awaited_not_when_called() -> None:
    error = NotFound("no such thing")
    awaitable = failed(error)  # nothing raised yet
    with pytest.raises(NotFound) as raised:
        await awaitable
    assert raised.value is error
