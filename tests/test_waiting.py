"""ctx.wait_for_event: human in the loop inside a step."""

from __future__ import annotations

import anyio
import pytest

from anyflow import (
    BasicRuntime,
    ConstantDelayRetryPolicy,
    Context,
    ContextStateError,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StepStateChanged,
    StopEvent,
    WaitTimeoutError,
    Workflow,
    WorkflowCancelledEvent,
    WorkflowIdleEvent,
    step,
)
from anyflow.testing import virtual_time

pytestmark = pytest.mark.anyio


class Answer(HumanResponseEvent):
    topic: str = ""


class Ask(Workflow):
    def __init__(self, timeout: float | None = None) -> None:
        super().__init__()
        self.side_effects: list[str] = []
        self.wait_timeout = timeout

    @step
    async def ask(self, ev: StartEvent, ctx: Context) -> StopEvent:
        self.side_effects.append("before the wait")
        answer = await ctx.wait_for_event(
            Answer,
            waiter_event=InputRequiredEvent(prefix=f"what about {ev.topic}? "),
            requirements={"topic": ev.topic},
            timeout=self.wait_timeout,
        )
        return StopEvent(result=f"{ev.topic}: {answer.response}")


async def answer_questions(handler: object, responses: dict[str, str]) -> list[Event]:
    seen = []
    async for ev in handler.stream_events():  # type: ignore[attr-defined]
        seen.append(ev)
        if isinstance(ev, InputRequiredEvent):
            topic = ev.prefix.split()[-1].rstrip("?")
            handler.send_event(Answer(topic=topic, response=responses[topic]))  # type: ignore[attr-defined]
    return seen


async def test_a_step_waits_for_the_answer_it_asked_for() -> None:
    async with Ask().run(topic="owls") as handler:
        seen = await answer_questions(handler, {"owls": "wise"})
        assert await handler == "owls: wise"
    assert seen == [InputRequiredEvent(prefix="what about owls? "), StopEvent(result="owls: wise")]


async def test_requirements_pick_the_matching_answer_and_keep_the_others() -> None:
    async with Ask().run(topic="owls") as handler:
        handler.send_event(Answer(topic="cats", response="no"))  # nobody waits for this one
        handler.send_event(Answer(topic="owls", response="yes"))
        assert await handler == "owls: yes"


async def test_an_answer_sent_before_the_question_is_kept_for_it() -> None:
    async with BasicRuntime() as runtime:
        handler = Ask().run(topic="owls", runtime=runtime)
        handler.send_event(Answer(topic="owls", response="early"))
        assert await handler == "owls: early"


async def test_a_wait_times_out_with_a_clear_error_in_the_step() -> None:
    with (
        virtual_time() as clock,
        pytest.raises(
            WaitTimeoutError, match=r"^step 'ask' waited 30s for a Answer \(waiter 'wait#1'\)"
        ),
    ):
        await Ask(timeout=30).run(topic="owls")
    assert clock.now() == 30


async def test_a_waiting_step_holds_no_worker_slot() -> None:
    class Job(Event):
        n: int

    class Parallel(Workflow):
        @step
        async def fan(self, ev: StartEvent, ctx: Context) -> Job | None:
            ctx.send_event(Job(n=1))
            ctx.send_event(Job(n=2))
            return None

        @step(num_workers=1)
        async def job(self, ev: Job, ctx: Context) -> StopEvent | None:
            if ev.n == 1:
                answer = await ctx.wait_for_event(HumanResponseEvent)
                return StopEvent(result=answer.response)
            # runs while job 1 waits, in the step's only slot
            ctx.write_event_to_stream(InputRequiredEvent(prefix="job 2 done; answer job 1"))
            return None

    async with Parallel().run() as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                handler.send_event(HumanResponseEvent(response="both ran"))
        assert await handler == "both ran"


async def test_cancel_while_waiting_runs_the_steps_cleanup() -> None:
    cleaned = anyio.Event()

    class Waits(Workflow):
        @step
        async def go(self, ev: StartEvent, ctx: Context) -> StopEvent:
            try:
                await ctx.wait_for_event(HumanResponseEvent, waiter_event=InputRequiredEvent())
            finally:
                cleaned.set()
            return StopEvent()

    async with Waits().run() as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                await handler.cancel_run()
        assert cleaned.is_set()
    assert isinstance(ev, WorkflowCancelledEvent)


async def test_a_retried_step_is_not_asked_twice() -> None:
    asked: list[str] = []

    class Flaky(Workflow):
        @step(retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=2))
        async def go(self, ev: StartEvent, ctx: Context) -> StopEvent:
            answer = await ctx.wait_for_event(
                HumanResponseEvent, waiter_event=InputRequiredEvent(prefix="ok?")
            )
            asked.append(answer.response)
            if ctx.retry_info().attempt == 1:
                raise ConnectionError("lost the answer on the way to the database")
            return StopEvent(result=answer.response)

    async with Flaky().run() as handler:
        questions = 0
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                questions += 1
                handler.send_event(HumanResponseEvent(response="yes"))
        assert await handler == "yes"
    assert questions == 1  # the retry got the remembered answer, no second question
    assert asked == ["yes", "yes"]


async def test_one_wait_at_a_time_per_step_and_an_abandoned_wait_frees_nothing_twice() -> None:
    class Greedy(Workflow):
        @step
        async def go(self, ev: StartEvent, ctx: Context) -> StopEvent:
            async with anyio.create_task_group() as tg:
                tg.start_soon(ctx.wait_for_event, HumanResponseEvent)
                await anyio.wait_all_tasks_blocked()
                try:
                    await ctx.wait_for_event(HumanResponseEvent)
                except ContextStateError as exc:
                    error = str(exc)
                # abandons the first wait: the step carries on in its slot
                tg.cancel_scope.cancel()
            return StopEvent(result=error)

    assert (await Greedy().run()).startswith("step 'go' is already waiting for an event")


async def test_idle_and_step_state_events_for_a_consumer_that_asks() -> None:
    async with Ask().run(topic="owls") as handler:
        seen = []
        async for ev in handler.stream_events(expose_internal=True):
            seen.append(ev)
            if isinstance(ev, WorkflowIdleEvent):
                handler.send_event(Answer(topic="owls", response="wise"))
        assert await handler == "owls: wise"
    kinds = [type(ev).__name__ for ev in seen]
    assert kinds == [
        "StepStateChanged",
        "InputRequiredEvent",
        "WorkflowIdleEvent",
        "StepStateChanged",
        "StopEvent",
    ]
    started, ended = (ev for ev in seen if isinstance(ev, StepStateChanged))
    assert (started.name, started.step_state, started.input_event_name) == (
        "ask",
        "running",
        "StartEvent",
    )
    assert (ended.step_state, ended.output_event_name) == ("not_running", "StopEvent")


async def test_wait_for_event_is_for_steps_only() -> None:
    wf = Ask()
    with pytest.raises(
        ContextStateError,
        match=r"^wait_for_event requires a running workflow\. Call workflow\.run\(\) first\. "
        r"Context\.wait_for_event\(\) cannot be used here",
    ):
        await Context(wf).wait_for_event(HumanResponseEvent)


async def test_a_remembered_answer_only_answers_a_wait_it_fits() -> None:
    class Name(HumanResponseEvent):
        pass

    class Age(HumanResponseEvent):
        pass

    class Changes(Workflow):
        @step(retry_policy=ConstantDelayRetryPolicy(delay=0, maximum_attempts=2))
        async def go(self, ev: StartEvent, ctx: Context) -> StopEvent:
            if ctx.retry_info().attempt == 1:
                await ctx.wait_for_event(Name, waiter_event=InputRequiredEvent(prefix="name?"))
                raise RuntimeError("flaky")
            age = await ctx.wait_for_event(Age, waiter_event=InputRequiredEvent(prefix="age?"))
            return StopEvent(result=type(age).__name__)

    async with Changes().run() as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                handler.send_event(Name() if ev.prefix == "name?" else Age())
        assert await handler == "Age"
