"""fallback(): degraded answers on failures (and, optionally, rejections)."""

from __future__ import annotations

import asyncio

import pytest

from kitpy import Context, Endpoint
from kitpy.errors import CircuitOpen, Internal, NotFound, RateLimited, Unavailable
from kitpy.resilience import fallback


def failing(exc: BaseException) -> Endpoint[str, str]:
    async def ep(ctx: Context, request: str) -> str:
        raise exc

    return ep


async def degraded(ctx: Context, request: str, error: BaseException) -> str:
    return f"cached:{request}:{type(error).__name__}"


@pytest.mark.parametrize(
    "exc", [Unavailable(), Internal(), ConnectionRefusedError(), CircuitOpen(), RateLimited()]
)
async def test_falls_back_on_failures_and_rejections(exc: BaseException) -> None:
    ep = fallback(degraded)(failing(exc))
    assert await ep(Context(), "k") == f"cached:k:{type(exc).__name__}"


async def test_client_faults_propagate() -> None:
    ep = fallback(degraded)(failing(NotFound("missing")))
    with pytest.raises(NotFound):
        await ep(Context(), "k")


async def test_rejections_can_be_excluded() -> None:
    for exc in (CircuitOpen(), RateLimited()):
        ep = fallback(degraded, rejections=False)(failing(exc))
        with pytest.raises(type(exc)):
            await ep(Context(), "k")
    # other failures still fall back
    ep = fallback(degraded, rejections=False)(failing(Unavailable()))
    assert await ep(Context(), "k") == "cached:k:Unavailable"


async def test_custom_classifier_and_success_path() -> None:
    ep = fallback(degraded, classifier=lambda e: isinstance(e, NotFound))(failing(NotFound()))
    assert await ep(Context(), "k") == "cached:k:NotFound"

    async def fine(ctx: Context, request: str) -> str:
        return request.upper()

    assert await fallback(degraded)(fine)(Context(), "k") == "K"


async def test_cancellation_is_not_a_fallback() -> None:
    ep = fallback(degraded)(failing(asyncio.CancelledError()))
    with pytest.raises(asyncio.CancelledError):
        await ep(Context(), "k")
