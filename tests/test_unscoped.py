"""Handlers used without a scope: ``handler = wf.run()`` then stream, send, await.

The run is driven by whoever waits on it (see ``anyflow.handler``), so these
tests check both what the caller sees and that nothing of the run is left
running once the caller stops waiting on it.
"""

from __future__ import annotations

import gc

import anyio
import pytest

from anyflow import (
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowCancelledByUser,
    WorkflowRuntimeError,
    step,
)
from anyflow.events import WorkflowCancelledEvent, WorkflowFailedEvent
from anyflow.handler import WorkflowHandler

pytestmark = pytest.mark.anyio


class Progress(Event):
    msg: str


class AskName(Workflow):
    """The incumbent's most common human-in-the-loop shape: a step returns the
    question, another takes the answer."""

    @step
    async def ask(self, ev: StartEvent, ctx: Context) -> InputRequiredEvent:
        ctx.write_event_to_stream(Progress(msg="asking"))
        await ctx.store.set("asked", await ctx.store.get("asked", default=0) + 1)
        return InputRequiredEvent(prefix="name?")

    @step
    async def greet(self, ev: HumanResponseEvent, ctx: Context) -> StopEvent:
        await ctx.store.set("greeted", await ctx.store.get("greeted", default=0) + 1)
        return StopEvent(result=f"hello {ev.response}")


class Probe:
    """Counts a step's entries and exits, to see what runs and what was stopped."""

    def __init__(self) -> None:
        self.entered = 0
        self.exited = 0


def waiting_flow(probe: Probe) -> type[Workflow]:
    class WaitsInStep(Workflow):
        @step
        async def ask(self, ev: StartEvent, ctx: Context) -> StopEvent:
            probe.entered += 1
            try:
                answer = await ctx.wait_for_event(
                    HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="?")
                )
            finally:
                probe.exited += 1
            return StopEvent(result=answer.response)

    return WaitsInStep


def task_count() -> int:
    return len(anyio.get_running_tasks())


async def test_stream_answer_and_await_without_a_scope() -> None:
    baseline = task_count()
    handler = AskName().run(topic="x")
    seen = []
    async for ev in handler.stream_events():
        seen.append(ev)
        if isinstance(ev, InputRequiredEvent):
            handler.ctx.send_event(HumanResponseEvent(response="ada"))
    assert seen == [
        Progress(msg="asking"),
        InputRequiredEvent(prefix="name?"),
        StopEvent(result="hello ada"),
    ]
    assert await handler == "hello ada"
    assert await handler == "hello ada"  # awaiting twice gives the result again
    assert handler.is_done()
    assert handler.done()
    assert handler.result() == "hello ada"
    assert handler.exception() is None
    assert await handler.ctx.store.get("asked") == 1
    assert await handler.ctx.store.get("greeted") == 1
    assert task_count() == baseline


async def test_handler_send_event_works_like_the_context_and_may_be_awaited() -> None:
    handler = AskName().run()
    async for ev in handler.stream_events():
        if isinstance(ev, InputRequiredEvent):
            await handler.send_event(HumanResponseEvent(response="bob"))
    assert await handler == "hello bob"


async def test_an_answer_sent_before_the_run_starts_is_kept() -> None:
    handler = AskName().run()
    handler.send_event(HumanResponseEvent(response="early"))
    assert await handler == "hello early"


async def test_await_alone_runs_to_the_end() -> None:
    handler = AskName().run()
    handler.ctx.send_event(HumanResponseEvent(response="x"))
    assert await handler == "hello x"


async def test_stopping_the_stream_then_awaiting_goes_on_with_the_run() -> None:
    probe = Probe()
    handler = waiting_flow(probe)().run()
    baseline = task_count()
    async for ev in handler.stream_events():
        assert ev == InputRequiredEvent(prefix="?")
        break
    # Paused: the waiting step was stopped and nothing of the run runs.
    assert task_count() == baseline
    assert (probe.entered, probe.exited) == (1, 1)
    assert not handler.is_done()
    handler.send_event(HumanResponseEvent(response="later"))
    assert await handler == "later"
    # The waiting step ran again from its start and found its answer, as
    # llama-index-workflows runs every step that waited.
    assert (probe.entered, probe.exited) == (2, 2)


async def test_an_abandoned_handler_leaves_nothing_running() -> None:
    probe = Probe()
    baseline = task_count()

    async def consume() -> None:
        handler = waiting_flow(probe)().run()
        async for _ in handler.stream_events():
            break

    await consume()
    gc.collect()
    assert task_count() == baseline
    assert probe.entered == probe.exited == 1


async def test_a_handler_never_awaited_warns_when_dropped() -> None:
    handler = AskName().run()
    with pytest.warns(RuntimeWarning, match=r"of AskName never ran: its handler was dropped"):
        del handler


async def test_a_handler_that_ran_does_not_warn() -> None:
    handler = AskName().run()
    handler.send_event(HumanResponseEvent(response="x"))
    await handler
    del handler
    gc.collect()  # filterwarnings=error would fail the test on a warning


async def test_cancel_run_before_it_ran() -> None:
    handler = AskName().run()
    await handler.cancel_run()
    assert handler.is_done()
    assert handler.cancelled()
    assert isinstance(handler.exception(), WorkflowCancelledByUser)
    assert handler.get_stop_event() == WorkflowCancelledEvent()
    with pytest.raises(WorkflowCancelledByUser):
        await handler


async def test_cancel_run_while_streaming_then_resume_from_the_saved_context() -> None:
    wf = AskName()
    handler = wf.run()
    saved = None
    async for ev in handler.stream_events():
        if isinstance(ev, InputRequiredEvent):
            saved = handler.ctx.to_dict()
            await handler.cancel_run()
            break
    assert isinstance(handler.exception(), WorkflowCancelledByUser)
    assert saved is not None
    resumed = wf.run(ctx=Context.from_dict(wf, saved))
    resumed.ctx.send_event(HumanResponseEvent(response="again"))
    assert await resumed == "hello again"
    assert await resumed.ctx.store.get("asked") == 1
    assert await resumed.ctx.store.get("greeted") == 1


async def test_a_failure_reaches_the_stream_and_the_await() -> None:
    class Boom(Exception):
        pass

    class Fails(Workflow):
        @step
        async def go(self, ev: StartEvent, ctx: Context) -> StopEvent:
            ctx.write_event_to_stream(Progress(msg="before"))
            raise Boom("no")

    handler = Fails().run()
    seen = [ev async for ev in handler.stream_events()]
    assert seen[0] == Progress(msg="before")
    assert isinstance(seen[-1], WorkflowFailedEvent)
    with pytest.raises(Boom, match=r"^no"):
        await handler


async def test_cancelling_the_awaiting_task_cancels_the_run() -> None:
    started = anyio.Event()
    cleaned = anyio.Event()

    class Forever(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            started.set()
            try:
                await anyio.sleep_forever()
            finally:
                cleaned.set()
            return StopEvent()

    handler = Forever().run()
    baseline = task_count()
    async with anyio.create_task_group() as tg:

        async def wait() -> None:
            await handler

        tg.start_soon(wait)
        await started.wait()
        tg.cancel_scope.cancel()
    assert cleaned.is_set()
    assert handler.cancelled()
    assert task_count() == baseline


async def test_one_task_streams_while_another_awaits() -> None:
    handler = AskName().run()
    results: dict[str, object] = {}

    async def stream() -> None:
        events = []
        async for ev in handler.stream_events():
            events.append(type(ev).__name__)
            if isinstance(ev, InputRequiredEvent):
                handler.send_event(HumanResponseEvent(response="both"))
        results["stream"] = events

    async def wait() -> None:
        results["await"] = await handler

    async with anyio.create_task_group() as tg:
        tg.start_soon(stream)
        tg.start_soon(wait)
    assert results == {
        "stream": ["Progress", "InputRequiredEvent", "StopEvent"],
        "await": "hello both",
    }


async def test_awaiting_the_stream_is_a_clear_error() -> None:
    handler = AskName().run()
    with pytest.raises(TypeError, match=r"^handler.stream_events\(\) is an async iterator"):
        await handler.stream_events()  # type: ignore[misc]
    await handler.cancel_run()


async def test_a_stream_read_to_its_end_is_not_read_again() -> None:
    handler = AskName().run()
    handler.send_event(HumanResponseEvent(response="once"))
    assert [type(ev) async for ev in handler.stream_events()][-1] is StopEvent
    with pytest.raises(
        WorkflowRuntimeError, match=r"^All the streamed events have already been consumed"
    ):
        handler.stream_events()
    assert await handler == "hello once"


async def test_async_with_stays_the_scoped_form() -> None:
    async with AskName().run() as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                handler.send_event(HumanResponseEvent(response="scoped"))
    assert handler.result() == "hello scoped"


async def test_async_with_after_a_paused_stream_finishes_the_run() -> None:
    handler = AskName().run()
    async for ev in handler.stream_events():
        if isinstance(ev, InputRequiredEvent):
            break
    async with handler:
        handler.send_event(HumanResponseEvent(response="block"))
    assert handler.result() == "hello block"


async def test_a_handler_made_from_a_context_carries_it_and_has_no_run() -> None:
    wf = AskName()
    ctx = Context(wf)
    await ctx.store.set("asked", 5)
    carrier = WorkflowHandler(ctx=ctx)
    assert carrier.ctx is ctx
    assert not carrier.is_done()
    with pytest.raises(WorkflowRuntimeError, match=r"^await handler needs a run, and this handler"):
        await carrier
    handler = wf.run(ctx=carrier.ctx)
    handler.send_event(HumanResponseEvent(response="carried"))
    assert await handler == "hello carried"
    assert await handler.ctx.store.get("asked") == 6
