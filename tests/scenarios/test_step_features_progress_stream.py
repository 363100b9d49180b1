"""A progress view of an order pipeline built from
handler.stream_events(expose_internal=True)."""

from __future__ import annotations

from collections import Counter

import anyio
import anyio.lowlevel
import pytest

from anyflow import (
    ConstantDelayRetryPolicy,
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    InternalEvent,
    StartEvent,
    StepStateChanged,
    StopEvent,
    Workflow,
    WorkflowCancelledByUser,
    WorkflowIdleEvent,
    WorkflowTimeoutError,
    step,
)
from anyflow.testing import virtual_time

pytestmark = pytest.mark.anyio


class Progress(Event):
    msg: str


class Parcel(Event):
    item: str


class Packed(Event):
    item: str


class Fulfilment(Workflow):
    def __init__(self, timeout: float | None = None) -> None:
        super().__init__(timeout=timeout)
        self.label_printer_jams = 1

    @step
    async def validate(self, ev: StartEvent, ctx: Context) -> Parcel | None:
        ctx.write_event_to_stream(Progress(msg=f"order with {len(ev.items)} items"))
        for item in ev.items:
            ctx.send_event(Parcel(item=item))
        return None

    @step(num_workers=2, retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=2))
    async def pack(self, ev: Parcel, ctx: Context) -> Packed:
        await anyio.lowlevel.checkpoint()
        if ev.item == "lamp" and self.label_printer_jams:
            self.label_printer_jams -= 1
            raise OSError("label printer jammed")
        return Packed(item=ev.item)

    @step
    async def ship(self, ev: Packed, ctx: Context) -> StopEvent | None:
        packed = ctx.collect_events(ev, [Packed, Packed, Packed])
        if packed is None:
            return None
        return StopEvent(result=sorted(p.item for p in packed))


ITEMS = ["book", "lamp", "mug"]


async def test_every_step_attempt_is_shown_starting_and_finishing() -> None:
    seen: list[Event] = []
    async with Fulfilment(timeout=10).run(items=ITEMS) as handler:
        async for ev in handler.stream_events(expose_internal=True):
            seen.append(ev)
        result = await handler

    assert result == ["book", "lamp", "mug"]
    assert isinstance(seen[-1], StopEvent)
    assert seen[-1].result == result
    assert [e.msg for e in seen if isinstance(e, Progress)] == ["order with 3 items"]

    changes = [e for e in seen if isinstance(e, StepStateChanged)]
    assert all(isinstance(e, InternalEvent) for e in changes)

    # each attempt (worker_id) starts once, then finishes once
    by_attempt: dict[int, list[StepStateChanged]] = {}
    for change in changes:
        by_attempt.setdefault(change.worker_id, []).append(change)
    for attempt in by_attempt.values():
        assert [c.step_state for c in attempt] == ["running", "not_running"]
        assert attempt[0].name == attempt[1].name
        assert attempt[0].input_event_name == attempt[1].input_event_name
        assert attempt[0].output_event_name is None

    finished = [
        (c.name, c.input_event_name, c.output_event_name)
        for c in changes
        if c.step_state == "not_running"
    ]
    assert Counter(finished) == Counter(
        {
            ("validate", "StartEvent", None): 1,
            ("pack", "Parcel", "Packed"): 3,
            ("pack", "Parcel", None): 1,  # the jammed attempt, retried
            ("ship", "Packed", None): 2,  # waiting for the set of three
            ("ship", "Packed", "StopEvent"): 1,
        }
    )
    # every step was seen running before the run's last event
    assert {c.name for c in changes} == {"validate", "pack", "ship"}
    last_change = max(i for i, e in enumerate(seen) if isinstance(e, StepStateChanged))
    assert last_change < len(seen) - 1


async def test_the_default_stream_hides_internal_progress() -> None:
    seen: list[Event] = []
    async with Fulfilment(timeout=10).run(items=ITEMS) as handler:
        async for ev in handler.stream_events():
            seen.append(ev)
        await handler

    assert [type(e) for e in seen] == [Progress, StopEvent]


class NeedsSignature(Workflow):
    @step
    async def sign(self, ev: StartEvent, ctx: Context) -> StopEvent:
        answer = await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="Sign here")
        )
        return StopEvent(result=answer.response)


async def test_a_waiting_step_is_still_running_until_it_gets_its_answer() -> None:
    seen: list[Event] = []
    async with NeedsSignature(timeout=10).run() as handler:
        async for ev in handler.stream_events(expose_internal=True):
            seen.append(ev)
            if isinstance(ev, WorkflowIdleEvent):
                handler.send_event(HumanResponseEvent(response="signed"))
        assert await handler == "signed"

    summary = [
        (type(e).__name__, getattr(e, "step_state", None), getattr(e, "output_event_name", None))
        for e in seen
    ]
    assert summary == [
        ("StepStateChanged", "running", None),
        ("InputRequiredEvent", None, None),
        ("WorkflowIdleEvent", None, None),
        ("StepStateChanged", "not_running", "StopEvent"),
        ("StopEvent", None, None),
    ]


class Acknowledge(Workflow):
    @step
    async def acknowledge(self, ev: StartEvent, ctx: Context) -> StopEvent:
        await ctx.wait_for_event(
            HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="Press OK to continue")
        )
        return StopEvent(result="acknowledged")


async def test_a_cancelled_waiting_step_is_not_reported_as_having_produced_a_result() -> None:
    seen: list[Event] = []

    async def nobody_presses_ok() -> None:
        async with Acknowledge(timeout=10).run() as handler:
            async for ev in handler.stream_events(expose_internal=True):
                seen.append(ev)
                if isinstance(ev, WorkflowIdleEvent):
                    await handler.cancel_run()
            await handler

    with pytest.raises(WorkflowCancelledByUser):
        await nobody_presses_ok()

    outputs = [e.output_event_name for e in seen if isinstance(e, StepStateChanged)]
    assert "StopEvent" not in outputs


async def test_a_waiting_step_cut_by_the_workflow_timeout_is_not_reported_as_finished() -> None:
    seen: list[Event] = []

    async def watch() -> None:
        async with Acknowledge(timeout=30).run() as handler:
            async for ev in handler.stream_events(expose_internal=True):
                seen.append(ev)
            await handler

    with virtual_time() as clock, pytest.raises(WorkflowTimeoutError):
        await watch()
    assert clock.now() == 30

    outputs = [e.output_event_name for e in seen if isinstance(e, StepStateChanged)]
    assert "StopEvent" not in outputs
