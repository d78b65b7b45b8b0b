"""Every resilience middleware keeps the name of the endpoint it wraps."""

from __future__ import annotations

import pytest

from kitpy import Context, Endpoint
from kitpy.endpoint import GenericMiddleware, endpoint_name, named
from kitpy.resilience import fallback, retry, timeout


def make_upper() -> Endpoint[str, str]:
    """A fresh endpoint each time: ``named`` names the function object it is given."""

    async def upper(ctx: Context, request: str) -> str:
        return request.upper()

    return upper


async def degraded(ctx: Context, request: str, error: BaseException) -> str:
    return ""


@pytest.mark.parametrize(
    "layer",
    [retry(), retry(max_attempts=1), timeout(1.0)],
    ids=["retry", "retry-once", "timeout"],
)
async def test_generic_layers_keep_the_name(layer: GenericMiddleware) -> None:
    ep = layer(named("op")(make_upper()))
    assert endpoint_name(ep) == "op"
    assert await ep(Context(), "a") == "A"


async def test_fallback_keeps_the_name() -> None:
    ep = fallback(degraded)(named("op")(make_upper()))
    assert endpoint_name(ep) == "op"


def test_an_unnamed_endpoint_stays_unnamed() -> None:
    assert endpoint_name(retry()(make_upper())) is None
