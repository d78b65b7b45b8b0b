"""Publisher (the fan-out every backend uses) and the fixed instancer."""

from __future__ import annotations

import asyncio

from kitpy.sd import Event, FixedInstancer, Instance, Publisher


async def test_every_subscriber_gets_the_current_set_then_changes() -> None:
    pub = Publisher()
    pub.update([Instance("b:1"), Instance("a:1")])
    first, second = pub.subscribe(), pub.subscribe()
    async with asyncio.timeout(2):
        for stream in (first, second):
            event = await anext(stream)
            assert [i.address for i in event.instances] == ["a:1", "b:1"]  # sorted
        pub.update([Instance("c:1")])
        for stream in (first, second):
            assert (await anext(stream)).instances == (Instance("c:1"),)


async def test_a_slow_subscriber_sees_only_the_latest_event() -> None:
    pub = Publisher()
    stream = pub.subscribe()
    for n in range(100):
        pub.update([Instance(f"h:{n}")])
    async with asyncio.timeout(2):
        event = await anext(stream)
    assert event.instances == (Instance("h:99"),)


async def test_an_identical_set_is_not_republished_but_recovery_after_error_is() -> None:
    pub = Publisher()
    pub.update([Instance("a:1")])
    stream = pub.subscribe()
    async with asyncio.timeout(2):
        assert (await anext(stream)).error is None
        pub.update([Instance("a:1")])  # no change: nothing to wake for
        pending = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.01)
        assert not pending.done()
        boom = ConnectionError("registry down")
        pub.fail(boom)
        assert await pending == Event((), boom)
        pub.update([Instance("a:1")])  # same set, but it ends the error
        assert (await anext(stream)) == Event((Instance("a:1"),))


async def test_close_ends_iteration_for_waiting_subscribers() -> None:
    pub = Publisher()
    seen: list[Event] = []

    async def consume() -> None:
        async for event in pub.subscribe():
            seen.append(event)

    task = asyncio.create_task(consume())
    pub.update([Instance("a:1")])
    await asyncio.sleep(0.01)
    pub.close()
    async with asyncio.timeout(2):
        await task
    assert seen == [Event((Instance("a:1"),))]
    assert pub.closed


async def test_fixed_instancer_reports_its_list_once() -> None:
    fixed = FixedInstancer(["b:2", Instance("a:1", zone="z")])
    assert fixed.instances == (Instance("a:1", zone="z"), Instance("b:2"))
    stream = fixed.subscribe()
    async with asyncio.timeout(2):
        assert (await anext(stream)).instances == fixed.instances
        fixed.close()
        assert [e async for e in stream] == []
