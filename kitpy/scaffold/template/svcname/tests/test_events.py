"""Events without a broker: the publisher is any endpoint, here a list."""

from __future__ import annotations

import pytest
from kitpy import Context, InvalidArgument, Unavailable

from ..events import Greeted, PublishingService
from ..service import BasicService


async def test_each_hello_publishes_what_was_answered() -> None:
    published: list[Greeted] = []

    async def record(ctx: Context, event: Greeted) -> None:
        published.append(event)

    svc = PublishingService(BasicService(), record)
    assert await svc.hello(Context(), "Ada") == "Hello, Ada!"
    assert published == [Greeted(name="Ada", greeting="Hello, Ada!")]


async def test_a_failed_hello_publishes_nothing() -> None:
    published: list[Greeted] = []

    async def record(ctx: Context, event: Greeted) -> None:
        published.append(event)

    with pytest.raises(InvalidArgument):
        await PublishingService(BasicService(), record).hello(Context(), "")
    assert published == []


async def test_a_publish_that_fails_fails_the_call() -> None:
    async def broker_down(ctx: Context, event: Greeted) -> None:
        raise Unavailable("no stream stores svcname.events.greeted")

    with pytest.raises(Unavailable):
        await PublishingService(BasicService(), broker_down).hello(Context(), "Ada")
