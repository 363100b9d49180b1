"""``handler.ctx.pending_waits()``: what a run waits for from outside, so a
caller answers a question with the event its wait takes."""

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
from anyflow.context import PendingWait

pytestmark = pytest.mark.anyio


class Confirmation(HumanResponseEvent):
    trip: str


class Confirm(Workflow):
    @step
    async def confirm(self, ev: StartEvent, ctx: Context) -> StopEvent:
        answer = await ctx.wait_for_event(
            Confirmation,
            waiter_event=InputRequiredEvent(prefix="Book Oslo?"),
            waiter_id="confirm",
            requirements={"trip": "Oslo"},
        )
        return StopEvent(result=answer.response)


async def test_a_waiting_run_tells_what_answers_its_question() -> None:
    handler = Confirm().run()
    assert handler.ctx.pending_waits() == []  # not started
    async with handler:
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                break
        [wait] = handler.ctx.pending_waits()
        assert wait == PendingWait(
            step="confirm",
            waiter_id="confirm",
            event_types=(Confirmation,),
            requirements={"trip": "Oslo"},
            question=InputRequiredEvent(prefix="Book Oslo?"),
            deadline=None,
        )
        assert wait.answers(Confirmation(trip="Oslo", response="yes"))
        assert not wait.answers(Confirmation(trip="Rome", response="yes"))
        assert not wait.answers(HumanResponseEvent(response="yes"))
        handler.send_event(Confirmation(trip="Oslo", response="yes"))
        assert await handler == "yes"
    assert handler.ctx.pending_waits() == []  # ended
