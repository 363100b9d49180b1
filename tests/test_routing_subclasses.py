"""Routing of subclass events: ``@step(accept_event_subclasses=...)``.

anyflow gives an event to every step that accepts its class or a base class of
it; ``accept_event_subclasses=False`` narrows one step to the exact classes it
names.  llama-index-workflows routes only exact classes unless told ``True``, so
a workflow where the two would differ (one step names a class, another reaches
it through a base class without saying which it means) is refused when
validated.  Each run test runs on asyncio and trio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from anyflow import (
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)
from anyflow._core.commands import StartWorker
from anyflow._core.reducer import reduce
from anyflow._core.state import RunSpec, RunState, StepSpec
from anyflow._core.ticks import RunStarted
from anyflow.durable import DurableRuntime, SqliteStore
from anyflow.errors import WorkflowRuntimeError, WorkflowValidationError
from anyflow.testing import simulate
from anyflow.validation import build_step_graph

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio


class Base(Event):
    pass


class Child(Base):
    pass


class Done(Event):
    who: str


class _Routed(Workflow):
    """Sends a Child, then a Base; ``base`` takes Base, ``child`` takes Child.
    Every delivery answers with a Done naming the step and the event's class;
    ``finish`` ends the run with the first ``expected`` of them, sorted."""

    expected = 2

    @step
    async def go(self, ev: StartEvent, ctx: Context) -> Base | Child | None:
        ctx.send_event(Child())
        ctx.send_event(Base())
        return None

    @step
    async def child(self, ev: Child) -> Done:
        return Done(who=f"child:{type(ev).__name__}")

    @step
    async def finish(self, ev: Done, ctx: Context) -> StopEvent | None:
        got = ctx.collect_events(ev, [Done] * self.expected)
        if got is None:
            return None
        return StopEvent(result=sorted(d.who for d in got))  # type: ignore[attr-defined]


class ExactBase(_Routed):
    @step(accept_event_subclasses=False)
    async def base(self, ev: Base) -> Done:
        return Done(who=f"base:{type(ev).__name__}")


class BothBase(_Routed):
    expected = 3

    @step(accept_event_subclasses=True)
    async def base(self, ev: Base) -> Done:
        return Done(who=f"base:{type(ev).__name__}")


class Unsaid(_Routed):
    @step
    async def base(self, ev: Base) -> Done:
        return Done(who=f"base:{type(ev).__name__}")


async def test_an_exact_step_gets_only_its_own_class() -> None:
    # base handles the Child before the Base if it gets it at all, so a Child
    # reaching it would show among the first two answers.
    assert await ExactBase().run() == ["base:Base", "child:Child"]


async def test_accepting_subclasses_on_purpose_gives_the_child_to_both_steps() -> None:
    assert await BothBase().run() == ["base:Base", "base:Child", "child:Child"]


async def test_a_step_reaching_a_named_class_through_its_base_is_refused_at_run() -> None:
    with pytest.raises(WorkflowValidationError) as caught:
        await Unsaid().run()
    message = str(caught.value)
    assert message.startswith("Event routing would differ from llama-index-workflows: Child")
    for part in (
        "Unsaid.child (its own class)",
        "Unsaid.base through its base class Base",
        "llama-index-workflows gives a Child only to child",
        "anyflow gives it to base too",
        "@step(accept_event_subclasses=False)",
        "@step(accept_event_subclasses=True)",
    ):
        assert part in message
    with pytest.raises(WorkflowValidationError, match="Event routing would differ"):
        Unsaid().validate()


async def test_validation_switched_off_runs_with_anyflows_routing() -> None:
    # disable_validation skips every graph check, this one too: the run then
    # routes as anyflow does, the Child to both steps.
    class Unchecked(Unsaid):
        expected = 3

    assert await Unchecked(disable_validation=True).run() == [
        "base:Base",
        "base:Child",
        "child:Child",
    ]


async def test_a_step_naming_only_the_base_class_is_not_refused() -> None:
    # Nobody names Child itself: both engines' differences are elsewhere
    # (llama-index-workflows would not route it at all), so nothing is ambiguous.
    class OnlyBase(Workflow):
        @step
        async def go(self, ev: StartEvent) -> Child:
            return Child()

        @step
        async def base(self, ev: Base) -> StopEvent:
            return StopEvent(result=type(ev).__name__)

    assert await OnlyBase().run() == "Child"


async def test_the_graph_follows_exact_routing() -> None:
    exact = build_step_graph(ExactBase.steps(), StartEvent)
    both = build_step_graph(BothBase.steps(), StartEvent)
    assert exact.outgoing[Child] == ["child"]
    assert sorted(map(str, both.outgoing[Child])) == ["base", "child"]
    assert exact.outgoing[Base] == ["base"]


async def test_step_config_reads_what_the_decorator_said() -> None:
    assert ExactBase.steps()["base"].options.accept_event_subclasses is False
    assert BothBase.steps()["base"].options.accept_event_subclasses is True
    assert Unsaid.steps()["base"].options.accept_event_subclasses is None
    assert ExactBase.base._step_config.accept_event_subclasses is False  # type: ignore[attr-defined]
    assert Unsaid.base._step_config.accept_event_subclasses is True  # type: ignore[attr-defined]


async def test_simulated_runs_route_exactly_under_every_order() -> None:
    for seed in range(8):
        simulation = await simulate(ExactBase(), seed=seed)
        assert simulation.result == ["base:Base", "child:Child"]


async def test_a_durable_run_routes_exactly(tmp_path: Path) -> None:
    async with DurableRuntime(SqliteStore(tmp_path / "runs.db")) as runtime:
        handler = ExactBase().run(run_id="r1", runtime=runtime)
        assert await handler == ["base:Base", "child:Child"]


def test_the_reducer_routes_an_exact_step_only_its_own_classes() -> None:
    spec = RunSpec(
        steps={
            "base": StepSpec("base", (Base,), exact=True),
            "child": StepSpec("child", (Child,)),
            "loose": StepSpec("loose", (Base,)),
        },
        stop_types=(StopEvent,),
    )
    assert spec.route(Child) == ("child", "loose")
    assert spec.route(Base) == ("base", "loose")
    _, commands = reduce(RunState.initial(spec), RunStarted(start_event=Child(), now=0.0))
    started = sorted(c.step for c in commands if isinstance(c, StartWorker))
    assert started == ["child", "loose"]


class Left(Event):
    pass


class LoudLeft(Left):
    pass


class Right(Event):
    pass


class _Joined(Workflow):
    """A join with a Left parameter and a LoudLeft parameter, sent LoudLeft,
    LoudLeft, Left and a Right."""

    @step
    async def go(self, ev: StartEvent, ctx: Context) -> Left | LoudLeft | Right | None:
        ctx.send_event(LoudLeft())
        ctx.send_event(LoudLeft())
        ctx.send_event(Left())
        ctx.send_event(Right())
        return None


async def test_an_exact_join_fills_a_parameter_only_with_its_own_class() -> None:
    class ExactJoin(_Joined):
        @step(accept_event_subclasses=False)
        async def join(self, a: Left, b: LoudLeft, c: Right) -> StopEvent:
            return StopEvent(result=[type(e).__name__ for e in (a, b, c)])

    # Subclass filling would bind the first two LoudLefts before the Left came.
    assert await ExactJoin().run() == ["Left", "LoudLeft", "Right"]


async def test_a_join_taking_a_class_and_its_base_must_say_which_it_means() -> None:
    class Unsaid(_Joined):
        @step
        async def join(self, a: Left, b: LoudLeft, c: Right) -> StopEvent:
            return StopEvent(result=None)

    with pytest.raises(WorkflowValidationError, match=r"takes LoudLeft in one parameter"):
        Unsaid().validate()

    class Both(_Joined):
        @step(accept_event_subclasses=True)
        async def join(self, a: Left, b: LoudLeft, c: Right) -> StopEvent:
            return StopEvent(result=[type(e).__name__ for e in (a, b, c)])

    assert await Both().run() == ["LoudLeft", "LoudLeft", "Right"]


async def test_a_child_sent_to_an_exact_step_by_name_is_refused() -> None:
    class Asked(Workflow):
        @step
        async def go(self, ev: StartEvent) -> InputRequiredEvent:
            return InputRequiredEvent(prefix="?")

        @step(accept_event_subclasses=False)
        async def base(self, ev: Base) -> StopEvent:
            return StopEvent(result=type(ev).__name__)

        @step
        async def child(self, ev: Child) -> StopEvent:
            return StopEvent(result="child")

        @step
        async def answer(self, ev: HumanResponseEvent, ctx: Context) -> Base | Child | None:
            return None

    async with Asked().run() as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                break
        with pytest.raises(
            WorkflowRuntimeError,
            match=r"Asked\.base does not accept Child; it accepts exactly: Base$",
        ):
            handler.send_event(Child(), step="base")
        handler.send_event(Base(), step="base")
        assert await handler == "Base"
