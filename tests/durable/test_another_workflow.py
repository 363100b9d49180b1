"""A run id recorded by one workflow, resumed with another: the error says
it is another workflow (not "another version" of this one) and changes nothing."""

from __future__ import annotations

import pytest

from anyflow import (
    Context,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)
from anyflow.durable import DurableRuntime, MemoryStore
from anyflow.errors import WorkflowChangedError

pytestmark = pytest.mark.anyio


class Booking(Workflow):
    @step
    async def ask(self, ev: StartEvent, ctx: Context) -> StopEvent:
        answer = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="Book?")
        )
        return StopEvent(result=answer.response)


class Invoice(Workflow):
    @step
    async def ask(self, ev: StartEvent, ctx: Context) -> StopEvent:
        return StopEvent(result="invoiced")


async def test_resuming_a_run_with_another_workflow_says_it_is_another_workflow() -> None:
    store = MemoryStore()
    async with DurableRuntime(store) as runtime:
        handler = Booking().run(run_id="b1", runtime=runtime)
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                break
    async with DurableRuntime(store) as runtime:
        with pytest.raises(WorkflowChangedError) as caught:
            await Invoice().run(run_id="b1", runtime=runtime)
    assert str(caught.value) == (
        f"run 'b1' is a run of another workflow, {__name__}:Booking, not of "
        f"{__name__}:Invoice: resume it with {__name__}:Booking, or give this workflow's "
        "run another run id"
    )
    async with DurableRuntime(store) as runtime:  # nothing was changed
        handler = Booking().run(run_id="b1", runtime=runtime)
        handler.send_event(HumanResponseEvent(response="yes"))
        assert await handler == "yes"
