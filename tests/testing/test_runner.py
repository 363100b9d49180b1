"""WorkflowTestRunner: one call runs a workflow and keeps what it did."""

from __future__ import annotations

import pytest

from anyflow import (
    ConstantDelayRetryPolicy,
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StepStateChanged,
    StopEvent,
    Workflow,
    WorkflowCancelledByUser,
    step,
)
from anyflow.testing import WorkflowTestRunner

pytestmark = pytest.mark.anyio


class Note(Event):
    text: str


class Booking(Workflow):
    @step(retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=2))
    async def ask(self, ev: StartEvent, ctx: Context) -> StopEvent:
        ctx.write_event_to_stream(Note(text=f"attempt {ctx.retry_info().attempt}"))
        if ctx.retry_info().attempt == 1:
            raise ConnectionError("flaky")
        where = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="where?")
        )
        when = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="when?"), waiter_id="when"
        )
        return StopEvent(result=f"{where.response} on {when.response}")


async def test_it_answers_when_idle_and_keeps_events_calls_and_result() -> None:
    run = await WorkflowTestRunner(Booking()).run(
        send=[HumanResponseEvent(response="Lisbon"), HumanResponseEvent(response="Monday")]
    )
    assert run.result == "Lisbon on Monday"
    assert run.exception is None
    assert run.calls == {"ask": 2}
    assert [type(e).__name__ for e in run.events] == [
        "Note",
        "Note",
        "InputRequiredEvent",
        "InputRequiredEvent",
        "StopEvent",
    ]
    assert not run.stuck


async def test_a_run_left_waiting_is_stuck_and_cancelled() -> None:
    run = await WorkflowTestRunner(Booking()).run(send=[HumanResponseEvent(response="Lisbon")])
    assert run.stuck
    assert isinstance(run.exception, WorkflowCancelledByUser)
    assert run.result is None


async def test_internal_events_on_request() -> None:
    run = await WorkflowTestRunner(Booking(), expose_internal=True).run(
        send=[HumanResponseEvent(response="a"), HumanResponseEvent(response="b")]
    )
    assert any(isinstance(e, StepStateChanged) for e in run.events)


async def test_a_failure_is_kept_not_raised() -> None:
    class Broken(Workflow):
        @step
        async def fail(self, ev: StartEvent) -> StopEvent:
            raise ValueError("no")

    run = await WorkflowTestRunner(Broken()).run()
    assert isinstance(run.exception, ValueError)
    assert run.calls == {"fail": 1}
