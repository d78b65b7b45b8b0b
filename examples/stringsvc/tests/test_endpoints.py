"""stringsvc endpoints, tested without a network: call them as plain async functions."""

from __future__ import annotations

import pytest

from kitpy import Code, Context, Endpoint, InvalidArgument, KitError, endpoint_name, keep_name
from kitpy.endpoint import Req, Resp

from ..endpoints import (
    CountRequest,
    CountResponse,
    UppercaseRequest,
    UppercaseResponse,
    make_count_endpoint,
    make_endpoints,
    make_uppercase_endpoint,
)
from ..service import BasicStringService, EmptyString


async def test_uppercase_endpoint() -> None:
    endpoint = make_uppercase_endpoint(BasicStringService())
    assert await endpoint(Context(), UppercaseRequest(s="hello")) == UppercaseResponse(v="HELLO")


async def test_count_endpoint() -> None:
    endpoint = make_count_endpoint(BasicStringService())
    assert await endpoint(Context(), CountRequest(s="héllo")) == CountResponse(v=5)


async def test_empty_string_is_invalid_argument() -> None:
    endpoint = make_uppercase_endpoint(BasicStringService())
    with pytest.raises(EmptyString) as info:
        await endpoint(Context(), UppercaseRequest(s=""))
    assert isinstance(info.value, InvalidArgument)
    assert info.value.code is Code.INVALID_ARGUMENT
    assert info.value.message == "empty string"


class Recorder:
    """A middleware that records each call's request and outcome code."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, str]] = []

    def __call__(self, next: Endpoint[Req, Resp]) -> Endpoint[Req, Resp]:
        async def endpoint(ctx: Context, request: Req) -> Resp:
            try:
                response = await next(ctx, request)
            except KitError as err:
                self.calls.append((request, err.code.name))
                raise
            self.calls.append((request, "OK"))
            return response

        return keep_name(endpoint, next)


async def test_endpoints_set_is_a_service_and_runs_middleware() -> None:
    recorder = Recorder()
    eps = make_endpoints(BasicStringService(), middleware=recorder)
    ctx = Context()
    assert await eps.uppercase(ctx, "go kit") == "GO KIT"
    assert await eps.count(ctx, "four") == 4
    with pytest.raises(EmptyString):
        await eps.uppercase(ctx, "")
    assert recorder.calls == [
        (UppercaseRequest(s="go kit"), "OK"),
        (CountRequest(s="four"), "OK"),
        (UppercaseRequest(s=""), "INVALID_ARGUMENT"),
    ]


async def test_endpoints_carry_their_names_and_pass_the_context_to_the_service() -> None:
    seen: list[float | None] = []

    class Service(BasicStringService):
        async def count(self, ctx: Context, s: str) -> int:
            seen.append(ctx.time_remaining())
            return await super().count(ctx, s)

    eps = make_endpoints(Service(), middleware=Recorder())
    assert (endpoint_name(eps.uppercase_endpoint), endpoint_name(eps.count_endpoint)) == (
        "uppercase",
        "count",
    )
    assert await eps.count(Context().with_timeout(5.0), "abc") == 3
    assert seen[0] is not None
    assert 0 < seen[0] <= 5.0
