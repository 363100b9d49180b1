"""A user's view of running workflows: the three ways to run, results, streaming."""

from __future__ import annotations

import anyio
import pytest

from anyflow import (
    BasicRuntime,
    Context,
    Event,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowRuntimeError,
    step,
)

pytestmark = pytest.mark.anyio


class Progress(Event):
    msg: str


class Joke(Event):
    text: str


class JokeFlow(Workflow):
    @step
    async def write(self, ev: StartEvent, ctx: Context) -> Joke:
        ctx.write_event_to_stream(Progress(msg="writing"))
        return Joke(text=f"a joke about {ev.topic}")

    @step
    async def finish(self, ev: Joke) -> StopEvent:
        return StopEvent(result=ev.text)


class Count(Event):
    n: int


class Chain(Workflow):
    """A step that returns the next event to itself n times."""

    @step
    async def begin(self, ev: StartEvent) -> Count:
        return Count(n=0)

    @step
    async def loop(self, ev: Count, ctx: Context) -> Count | StopEvent:
        if ev.n == ctx_limit(ctx):
            return StopEvent(result=ev.n)
        return Count(n=ev.n + 1)


def ctx_limit(ctx: Context) -> int:
    return 50


async def test_await_run_gives_the_result() -> None:
    assert await JokeFlow().run(topic="owls") == "a joke about owls"


async def test_run_scoped_to_a_block_streams_progress_then_the_stop_event() -> None:
    async with JokeFlow().run(topic="owls") as handler:
        events = [ev async for ev in handler.stream_events()]
        assert await handler == "a joke about owls"
    assert events == [Progress(msg="writing"), StopEvent(result="a joke about owls")]
    assert handler.is_done()
    assert handler.result() == "a joke about owls"
    assert handler.exception() is None
    assert handler.get_stop_event() == StopEvent(result="a joke about owls")


async def test_leaving_the_block_waits_for_the_run() -> None:
    async with JokeFlow().run(topic="owls") as handler:
        pass
    assert handler.result() == "a joke about owls"


async def test_runs_in_a_long_lived_runtime() -> None:
    async with BasicRuntime() as runtime:
        handlers = [JokeFlow().run(topic=str(i), runtime=runtime) for i in range(10)]
        results = [await h for h in handlers]
    assert results == [f"a joke about {i}" for i in range(10)]


async def test_a_step_looping_on_itself() -> None:
    assert await Chain().run() == 50


async def test_start_event_fields_are_checked_at_run() -> None:
    class OrderStart(StartEvent):
        order_id: str

    class Orders(Workflow):
        @step
        async def go(self, ev: OrderStart) -> StopEvent:
            return StopEvent(result=ev.order_id)

    with pytest.raises(
        TypeError,
        match=r"^Failed creating a start event of type 'OrderStart' with the keyword arguments: "
        r"\{'ordr': '1'\}: OrderStart is missing required field\(s\): order_id \(it got free "
        r"field\(s\) ordr: a misspelling\?\)$",
    ) as caught:
        Orders().run(ordr="1")
    assert isinstance(caught.value, WorkflowRuntimeError)
    assert await Orders().run(order_id="7") == "7"
    assert await Orders().run(OrderStart(order_id="8")) == "8"
    with pytest.raises(
        TypeError, match=r"^pass either a start event or its fields to run\(\), not both"
    ):
        Orders().run(OrderStart(order_id="8"), order_id="9")
    with pytest.raises(TypeError, match=r"starts with OrderStart, not StartEvent$"):
        Orders().run(StartEvent())


async def test_typed_stop_event_is_returned_whole() -> None:
    class Answer(StopEvent):
        value: int

    class Typed(Workflow):
        @step
        async def go(self, ev: StartEvent) -> Answer:
            return Answer(value=42)

    assert await Typed().run() == Answer(value=42)


async def test_step_order_of_ctx_and_event_parameters_does_not_matter() -> None:
    class CtxFirst(Workflow):
        @step
        async def go(self, ctx: Context, ev: StartEvent) -> StopEvent:
            await ctx.store.set("seen", ev.x)
            return StopEvent(result=await ctx.store.get("seen"))

    assert await CtxFirst().run(x=5) == 5


async def test_stream_has_one_consumer() -> None:
    async with JokeFlow().run(topic="owls") as handler:
        first = handler.stream_events()
        with pytest.raises(
            WorkflowRuntimeError,
            match=r"already being streamed: stream_events\(\) has one consumer",
        ):
            handler.stream_events()
        await first.aclose()  # type: ignore[attr-defined]
        assert [type(ev) async for ev in handler.stream_events()][-1] is StopEvent


async def test_events_published_before_the_consumer_attaches_are_kept() -> None:
    async with BasicRuntime() as runtime:
        handler = JokeFlow().run(topic="owls", runtime=runtime)
        await handler
        assert [ev async for ev in handler.stream_events()] == [
            Progress(msg="writing"),
            StopEvent(result="a joke about owls"),
        ]


async def test_an_unscoped_handler_runs_when_awaited() -> None:
    handler = JokeFlow().run(topic="owls")
    with pytest.raises(WorkflowRuntimeError, match=r"^the run has not finished"):
        handler.result()
    assert not handler.is_done()
    assert await handler == "a joke about owls"


async def test_result_before_the_end_is_an_error() -> None:
    release = anyio.Event()

    class Waits(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            await release.wait()
            return StopEvent(result=1)

    async with Waits().run() as handler:
        with pytest.raises(
            WorkflowRuntimeError, match=r"^the run has not finished: `await handler` first$"
        ):
            handler.result()
        assert not handler.is_done()
        release.set()
    assert handler.result() == 1


async def test_same_workflow_instance_runs_concurrently() -> None:
    wf = JokeFlow()
    results: list[str] = []
    async with anyio.create_task_group() as tg:
        for topic in ("a", "b", "c"):

            async def one(topic: str = topic) -> None:
                results.append(await wf.run(topic=topic))

            tg.start_soon(one)
    assert sorted(results) == ["a joke about a", "a joke about b", "a joke about c"]
