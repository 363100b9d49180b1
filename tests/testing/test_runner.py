"""WorkflowTestRunner: one call runs a workflow and keeps what it did, with the
incumbent's API (collected, event_types, result, ctx; a failed run raises) and
anyflow's additions (send, calls, stuck, raise_on_error)."""

from __future__ import annotations

import pytest

import anyflow.testing
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
from anyflow.events import InternalEvent
from anyflow.testing import WorkflowTestRunner
from anyflow.testing.runner import WorkflowTestResult
from anyflow.testing.runner import WorkflowTestRunner as RunnerFromModule

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


class Greeting(Event):
    greeting: str


class Hello(Greeting):
    pass


class TwoSteps(Workflow):
    @step
    async def first(self, ev: StartEvent, ctx: Context) -> Greeting:
        await ctx.store.set("seen", ev.get("name"))
        ctx.write_event_to_stream(Hello(greeting="hi"))
        return Greeting(greeting="hello")

    @step
    async def second(self, ev: Greeting, ctx: Context) -> StopEvent:
        await ctx.store.set("greeting", ev.greeting)
        return StopEvent(result=f"{ev.greeting} {await ctx.store.get('seen')}")


class Broken(Workflow):
    @step
    async def fail(self, ev: StartEvent) -> StopEvent:
        raise ValueError("no")


# -- the incumbent's API -------------------------------------------------------


async def test_run_collects_every_event_and_counts_them_by_class() -> None:
    run = await WorkflowTestRunner(TwoSteps()).run(start_event=StartEvent(name="Ada"))

    assert isinstance(run, WorkflowTestResult)
    assert run.result == "hello Ada"
    # Internal events are kept by default, as in llama-index-workflows.
    assert [(type(e).__name__, getattr(e, "step_state", None)) for e in run.collected] == [
        ("StepStateChanged", "running"),
        ("Hello", None),
        ("StepStateChanged", "not_running"),
        ("StepStateChanged", "running"),
        ("StepStateChanged", "not_running"),
        ("StopEvent", None),
    ]
    assert run.event_types == {StepStateChanged: 4, Hello: 1, StopEvent: 1}
    assert sum(run.event_types.values()) == len(run.collected)


async def test_the_context_is_readable_after_the_run() -> None:
    run = await WorkflowTestRunner(TwoSteps()).run(StartEvent(name="Ada"))

    assert await run.ctx.store.get("greeting") == "hello"
    assert await run.ctx.store.get("seen") == "Ada"


async def test_a_context_passed_in_is_the_runs_context() -> None:
    wf = TwoSteps()
    ctx = Context(wf)
    run = await WorkflowTestRunner(wf).run(StartEvent(name="Bo"), ctx)

    assert run.ctx is ctx
    assert await ctx.store.get("greeting") == "hello"


async def test_exclude_events_leaves_out_exactly_those_classes() -> None:
    run = await WorkflowTestRunner(TwoSteps()).run(
        StartEvent(name="Ada"), exclude_events=[StepStateChanged, Greeting]
    )

    # Hello derives from Greeting and is kept: the match is on the exact class.
    assert [type(e) for e in run.collected] == [Hello, StopEvent]
    assert run.event_types == {Hello: 1, StopEvent: 1}


async def test_expose_internal_false_keeps_only_the_runs_own_events() -> None:
    # Positionally, in the incumbent's order: start_event, ctx, expose_internal.
    run = await WorkflowTestRunner(TwoSteps()).run(StartEvent(name="Ada"), None, False)

    assert not any(isinstance(e, InternalEvent) for e in run.collected)
    assert run.event_types == {Hello: 1, StopEvent: 1}
    # Step attempts are counted whatever is collected.
    assert run.calls == {"first": 1, "second": 1}


async def test_a_failed_run_raises_its_error() -> None:
    with pytest.raises(ValueError, match=r"^no\nraised by step 'fail'") as caught:
        await WorkflowTestRunner(Broken()).run()
    assert caught.value.args == ("no",)


async def test_the_module_path_of_the_incumbent_has_the_same_classes() -> None:
    assert RunnerFromModule is WorkflowTestRunner
    assert anyflow.testing.TestRunResult is WorkflowTestResult


# -- anyflow's additions -------------------------------------------------------


async def test_it_answers_when_idle_and_keeps_events_calls_and_result() -> None:
    run = await WorkflowTestRunner(Booking()).run(
        send=[HumanResponseEvent(response="Lisbon"), HumanResponseEvent(response="Monday")]
    )
    assert run.result == "Lisbon on Monday"
    assert run.exception is None
    assert run.calls == {"ask": 2}
    assert [type(e).__name__ for e in run.collected if not isinstance(e, InternalEvent)] == [
        "Note",
        "Note",
        "InputRequiredEvent",
        "InputRequiredEvent",
        "StopEvent",
    ]
    assert run.events == tuple(run.collected)
    assert not run.stuck


async def test_start_event_fields_as_keywords() -> None:
    run = await WorkflowTestRunner(TwoSteps()).run(name="Cy")
    assert run.result == "hello Cy"


async def test_a_run_left_waiting_raises_the_cancellation_saying_why() -> None:
    with pytest.raises(WorkflowCancelledByUser) as caught:
        await WorkflowTestRunner(Booking()).run(send=[HumanResponseEvent(response="Lisbon")])
    assert caught.value.__notes__[-1] == (
        "WorkflowTestRunner cancelled the run: it waited for an event and send= had no "
        "more (1 sent); pass the answers in run(send=[...])"
    )


async def test_a_run_left_waiting_is_stuck_when_errors_are_kept() -> None:
    run = await WorkflowTestRunner(Booking()).run(send=[], raise_on_error=False)
    assert run.stuck
    assert run.result is None
    assert isinstance(run.exception, WorkflowCancelledByUser)

    run = await WorkflowTestRunner(Booking()).run(
        send=[HumanResponseEvent(response="Lisbon")], raise_on_error=False
    )
    assert run.stuck
    assert [type(e).__name__ for e in run.collected][-1] == "WorkflowCancelledEvent"


async def test_a_failure_is_kept_when_asked() -> None:
    run = await WorkflowTestRunner(Broken()).run(raise_on_error=False)
    assert isinstance(run.exception, ValueError)
    assert run.result is None
    assert run.calls == {"fail": 1}
    assert type(run.collected[-1]).__name__ == "WorkflowFailedEvent"
