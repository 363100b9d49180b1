"""The handler's public questions about its run: ``check_sendable`` (would the
run take this event from outside now?) and ``wait_finished`` (how did it end?,
without raising a failure)."""

from __future__ import annotations

import pytest

from anyflow import (
    BasicRuntime,
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowRuntimeError,
    step,
)
from anyflow.errors import WorkflowStepDoesNotExistError
from anyflow.handler import WorkflowHandler
from anyflow.runtime.vocabulary import Completed, Failed

pytestmark = pytest.mark.anyio


class Name(Event):
    text: str


class Unrelated(Event):
    pass


class Asks(Workflow):
    @step
    async def ask(self, ev: StartEvent, ctx: Context) -> StopEvent:
        name = await ctx.wait_for_event(Name, waiter_event=InputRequiredEvent(prefix="name?"))
        return StopEvent(result=f"hello {name.text}")


class Greets(Workflow):
    @step
    async def greet(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result=f"hello {ev.name}")


class Breaks(Workflow):
    @step
    async def fail(self, ev: StartEvent) -> StopEvent:
        raise ValueError("broken on purpose")


async def test_check_sendable_says_what_send_event_would_refuse() -> None:
    async with BasicRuntime() as runtime:
        handler = Asks().run(runtime=runtime)
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                handler.check_sendable(Name(text="ann"))  # the step waits for one now
                handler.check_sendable(Name(text="ann"), step="ask")
                with pytest.raises(WorkflowRuntimeError, match="no step of Asks accepts Unrelated"):
                    handler.check_sendable(Unrelated())
                with pytest.raises(WorkflowStepDoesNotExistError, match="has no step 'nope'"):
                    handler.check_sendable(Name(text="ann"), step="nope")
                with pytest.raises(TypeError, match="takes an Event, not str"):
                    handler.check_sendable("ann")  # type: ignore[arg-type]
                handler.send_event(Name(text="ann"))
        assert await handler == "hello ann"
        # Nothing waits for a Name any more; a HumanResponseEvent would be kept
        # for a later wait, but the run has finished.
        with pytest.raises(WorkflowRuntimeError, match="no step of Asks accepts Name"):
            handler.check_sendable(Name(text="bob"))
        with pytest.raises(WorkflowRuntimeError, match="has finished and takes no more events"):
            handler.check_sendable(HumanResponseEvent(response="late"))
        with pytest.raises(WorkflowRuntimeError, match="has finished"):
            handler.send_event(HumanResponseEvent(response="late"))


async def test_check_sendable_before_the_step_waits_refuses_an_unrouted_event() -> None:
    handler = Asks().run()  # driven by whoever waits on it: nothing has run yet
    with pytest.raises(WorkflowRuntimeError, match="no step of Asks accepts Name"):
        handler.check_sendable(Name(text="ann"))
    handler.check_sendable(HumanResponseEvent(response="kept for a later wait"))
    await handler.cancel_run()


async def test_wait_finished_gives_a_failure_as_an_outcome_without_raising_it() -> None:
    async with Breaks().run() as handler:
        outcome = await handler.wait_finished()
        assert isinstance(outcome, Failed)
        assert outcome.step == "fail"
        assert isinstance(outcome.error, ValueError)
    # The block did not raise the failure: the outcome was received.
    error = handler.exception()
    assert isinstance(error, ValueError)
    assert str(error) == "broken on purpose"


async def test_wait_finished_drives_a_run_no_runtime_hosts() -> None:
    handler = Greets().run(name="cy")
    assert not handler.is_done()
    outcome = await handler.wait_finished()
    assert isinstance(outcome, Completed)
    assert outcome.stop_event.result == "hello cy"
    assert handler.is_done()
    assert await handler == "hello cy"


async def test_a_handler_made_from_a_context_alone_has_no_run_to_ask_about() -> None:
    handler = WorkflowHandler(ctx=Context(Asks()))
    with pytest.raises(WorkflowRuntimeError, match=r"wait_finished\(\) needs a run"):
        await handler.wait_finished()
    with pytest.raises(WorkflowRuntimeError, match=r"check_sendable\(\) needs a run"):
        handler.check_sendable(Name(text="ann"))
