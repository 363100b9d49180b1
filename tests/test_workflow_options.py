"""Workflow construction options, function and plain ``def`` steps, graph checks,
and the context helpers that programs written for llama-index-workflows use."""

from __future__ import annotations

import threading

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
    WorkflowConfigurationError,
    WorkflowStepDoesNotExistError,
    WorkflowValidationError,
    step,
)
from anyflow.errors import ContextStateError, NotInStepError, WorkflowRuntimeError


class Mid(Event):
    n: int = 0


class Tick(Event):
    pass


# Function steps: @step(workflow=...) and add_step.


def test_a_function_step_joins_the_workflow_it_names() -> None:
    class Host(Workflow):
        @step
        async def begin(self, ev: StartEvent) -> Mid:
            return Mid(n=1)

    @step(workflow=Host)
    async def finish(ev: Mid) -> StopEvent:
        return StopEvent(result=ev.n + 1)

    assert set(Host.steps()) == {"begin", "finish"}
    assert Host._step_functions == {"finish": finish}
    assert anyio.run(lambda: Host().run()) == 2


def test_a_function_step_without_a_workflow_is_refused_when_decorated() -> None:
    with pytest.raises(
        WorkflowValidationError,
        match=r"^To decorate lonely please pass a workflow class to the @step decorator\. .*"
        r"write @step\(workflow=MyWorkflow\)",
    ):

        @step
        async def lonely(ev: StartEvent) -> StopEvent:
            return StopEvent()


def test_add_step_refuses_an_undecorated_function_and_a_taken_name() -> None:
    class Host(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

    async def plain(ev: StartEvent) -> StopEvent:
        return StopEvent()

    with pytest.raises(
        WorkflowValidationError,
        match=r"^Step function plain is missing the `@step` decorator: write @step\(workflow=Host\)",
    ):
        Host.add_step(plain)
    with pytest.raises(
        WorkflowValidationError,
        match=r"^A step go is already part of this workflow, please choose another name",
    ):

        @step(workflow=Host)
        async def go(ev: StartEvent) -> StopEvent:
            return StopEvent()

    assert set(Host.steps()) == {"go"}


def test_adding_a_step_validates_the_workflow_again() -> None:
    class Grows(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

    Grows().validate()

    @step(workflow=Grows)
    async def stray(ev: Tick) -> StopEvent:
        return StopEvent()

    with pytest.raises(
        WorkflowValidationError,
        match=r"^The following events are consumed but never produced: Tick",
    ):
        Grows().validate()


# Plain def steps run in a worker thread.


class SyncFlow(Workflow):
    @step
    def fan(self, ev: StartEvent, ctx: Context) -> Mid | None:
        ctx.write_event_to_stream(Tick())
        for n in range(3):
            ctx.send_event(Mid(n=n))
        return None

    @step
    def gather(self, ev: Mid, ctx: Context) -> StopEvent | None:
        assert threading.current_thread() is not threading.main_thread()
        assert Context.get_step_context().run_id == ctx.run_id
        got = ctx.collect_events(ev, [Mid, Mid, Mid])
        if got is None:
            return None
        return StopEvent(result=sorted(e.n for e in got))


async def test_a_plain_def_step_runs_in_a_thread_and_talks_to_the_run() -> None:
    async with SyncFlow(timeout=10).run() as handler:
        seen = [type(ev).__name__ async for ev in handler.stream_events()]
    assert handler.result() == [0, 1, 2]
    assert seen == ["Tick", "StopEvent"]


async def test_a_plain_def_step_cannot_wait_for_an_event() -> None:
    class Waits(Workflow):
        @step
        def go(self, ev: StartEvent, ctx: Context) -> StopEvent:
            anyio.from_thread.run(ctx.wait_for_event, HumanResponseEvent)
            return StopEvent()

    with pytest.raises(Exception, match=r"wait_for_event needs an `async def` step"):
        await Waits(timeout=10).run()


# Context helpers.


async def test_get_step_context_is_the_running_steps_context() -> None:
    def helper() -> str | None:
        return Context.get_step_context().run_id

    class Nested(Workflow):
        @step
        async def go(self, ev: StartEvent, ctx: Context) -> StopEvent:
            return StopEvent(result=(helper(), ctx.run_id))

    mine, theirs = await Nested().run()
    assert mine == theirs is not None


def test_get_step_context_outside_a_step_says_where_it_works() -> None:
    # A ContextStateError, and a WorkflowRuntimeError as llama-index-workflows raises.
    with pytest.raises(
        NotInStepError,
        match=r"^Context\.get_step_context\(\) may only be called from within a step function "
        r"\(or code a running step calls, in its task or thread\); elsewhere, pass the step's ctx",
    ) as caught:
        Context.get_step_context()
    assert isinstance(caught.value, ContextStateError)
    assert isinstance(caught.value, WorkflowRuntimeError)


async def test_running_steps_names_the_steps_at_work() -> None:
    class Busy(Workflow):
        @step
        async def go(self, ev: StartEvent, ctx: Context) -> StopEvent:
            return StopEvent(result=await ctx.running_steps())

    assert await Busy().run() == ["go"]


async def test_context_streams_the_runs_events() -> None:
    class Ask(Workflow):
        @step
        async def ask(self, ev: StartEvent) -> InputRequiredEvent:
            return InputRequiredEvent(prefix="?")

        @step
        async def answer(self, ev: HumanResponseEvent) -> StopEvent:
            return StopEvent(result=ev.response)

    async with Ask(timeout=10).run() as handler:
        async for ev in handler.ctx.stream_events():
            if isinstance(ev, InputRequiredEvent):
                handler.ctx.send_event(HumanResponseEvent(response="yes"))
    assert handler.result() == "yes"


# Construction options.


class Plain(Workflow):
    @step
    async def go(self, ev: StartEvent) -> StopEvent:
        return StopEvent(result="ok")


def test_workflow_name_defaults_to_the_module_and_class() -> None:
    assert Plain().workflow_name == f"{__name__}.Plain"
    assert Plain(workflow_name="plain").workflow_name == "plain"


def test_events_and_stop_event_class() -> None:
    class Done(StopEvent):
        pass

    class Flow(Workflow):
        @step
        async def go(self, ev: StartEvent) -> Mid:
            return Mid()

        @step
        async def end(self, ev: Mid) -> Done:
            return Done()

    wf = Flow()
    assert set(wf.events) == {StartEvent, Mid, Done}
    assert wf.stop_event_class is Done
    assert wf.start_event_class is StartEvent


def test_two_stop_event_classes_are_refused() -> None:
    class Other(StopEvent):
        pass

    class Two(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

        @step
        async def alt(self, ev: Mid) -> Other:
            return Other()

    with pytest.raises(
        WorkflowConfigurationError,
        match=r"^Only one type of StopEvent is allowed per workflow, found 2: the steps of Two "
        r"return different stop events \(Other, StopEvent\)",
    ):
        Two()


def test_no_steps_is_a_configuration_error() -> None:
    class Empty(Workflow):
        pass

    with pytest.raises(
        WorkflowConfigurationError, match=r"^Workflow 'Empty' has no configured steps"
    ):
        Empty()


def test_bad_options_are_refused_at_once() -> None:
    with pytest.raises(ValueError, match=r"^num_concurrent_runs must be an integer greater than 0"):
        Plain(num_concurrent_runs=0)
    with pytest.raises(WorkflowValidationError, match=r"^Workflow\(serializer=\.\.\.\) is not"):
        Plain(serializer=object())
    with pytest.raises(
        WorkflowValidationError,
        match=r"^Workflow\(skip_graph_checks=\.\.\.\) names unknown graph checks: reach; "
        r"the checks are: dead_end, reachability, terminal_event$",
    ):
        Plain(skip_graph_checks={"reach"})
    with pytest.raises(
        WorkflowValidationError, match=r"^@step\(skip_graph_checks=\.\.\.\) names unknown"
    ):
        step(skip_graph_checks=["terminal_event"])


async def test_num_concurrent_runs_bounds_the_runs_executing_at_once() -> None:
    active = 0
    most = 0
    gate = anyio.Event()

    class Limited(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            nonlocal active, most
            active += 1
            most = max(most, active)
            await gate.wait()
            active -= 1
            return StopEvent(result=ev.n)

    wf = Limited(num_concurrent_runs=2)
    results: list[int] = []

    async def one(n: int) -> None:
        results.append(await wf.run(n=n))

    async with anyio.create_task_group() as tg:
        for n in range(5):
            tg.start_soon(one, n)
        await anyio.wait_all_tasks_blocked()
        assert active == 2
        gate.set()
    assert most == 2
    assert sorted(results) == [0, 1, 2, 3, 4]


# Graph checks.


class Loop(Event):
    pass


def test_a_step_nothing_leads_to_is_unreachable() -> None:
    class Island(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

        @step
        async def spin(self, ev: Loop) -> Loop:
            return Loop()

    with pytest.raises(
        WorkflowValidationError, match=r"^Unreachable steps: spin: no event the caller"
    ):
        Island().validate()
    Island(skip_graph_checks={"reachability", "dead_end"})


def test_a_step_that_never_leads_to_an_output_is_a_dead_end() -> None:
    class Spin(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent | Loop:
            return StopEvent()

        @step
        async def spin(self, ev: Loop) -> Loop:
            return Loop()

    with pytest.raises(WorkflowValidationError, match=r"^Dead-end steps: spin: what they return"):
        Spin().validate()

    class Allowed(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent | Loop:
            return StopEvent()

        @step(skip_graph_checks=["dead_end"])
        async def spin(self, ev: Loop) -> Loop:
            return Loop()

    Allowed().validate()


async def test_the_graph_is_checked_at_the_first_run_not_when_built() -> None:
    class Orphan(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent | Mid:
            return StopEvent()

    wf = Orphan()  # building it is fine: a workflow that is never run may be incomplete
    with pytest.raises(WorkflowValidationError, match=r"^The following events are produced"):
        wf.run()
    assert await Orphan(disable_validation=True).run() is None


def test_disable_validation_defers_the_checks_to_validate() -> None:
    class Orphan(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent | Mid:
            return StopEvent()

    wf = Orphan(disable_validation=True)
    with pytest.raises(WorkflowValidationError, match=r"^The following events are produced"):
        wf.validate()


def test_validate_says_whether_the_workflow_asks_for_input() -> None:
    class Ask(Workflow):
        @step
        async def ask(self, ev: StartEvent) -> InputRequiredEvent:
            return InputRequiredEvent(prefix="?")

        @step
        async def answer(self, ev: HumanResponseEvent) -> StopEvent:
            return StopEvent()

    assert Ask().validate() is True
    assert Plain().validate() is False


async def test_sending_to_a_step_that_does_not_exist_names_the_steps() -> None:
    async with Plain().run() as handler:
        with pytest.raises(
            WorkflowStepDoesNotExistError, match=r"has no step 'nope'; its steps are: go"
        ):
            handler.send_event(Mid(), step="nope")


async def test_verbose_prints_each_step_attempt(capsys: pytest.CaptureFixture[str]) -> None:
    class Two(Workflow):
        @step
        async def go(self, ev: StartEvent) -> Mid:
            return Mid(n=1)

        @step
        async def end(self, ev: Mid) -> StopEvent:
            return StopEvent(result=ev.n)

    assert await Two(verbose=True).run() == 1
    assert capsys.readouterr().out.splitlines() == [
        "[go:0] started from StartEvent",
        "[go:0] complete with Mid",
        "[end:1] started from Mid",
        "[end:1] complete with StopEvent",
        "[result] StopEvent(result=1)",
    ]
    assert await Two().run() == 1
    assert capsys.readouterr().out == ""


def test_is_free_function_reads_qualified_names() -> None:
    from anyflow.utils import is_free_function

    assert is_free_function("f")
    assert is_free_function("outer.<locals>.f")
    assert not is_free_function("Cls.f")
    assert not is_free_function("outer.<locals>.Cls.f")
    with pytest.raises(ValueError, match=r"^is_free_function needs a qualified name"):
        is_free_function("")
