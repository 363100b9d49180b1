"""Code written for llama-index-workflows that reads a workflow's steps and checks
its graph through the incumbent's names: ``fn._step_config``, ``wf._get_steps()``,
``wf._start_event_class``, ``anyflow.representation.validate`` and the
incumbent's wording at the start of the errors such code matches on.

Each name is a view of anyflow's own reading of a step (``Workflow.steps()``)
and of the checks ``Workflow.validate()`` makes; the tests check both agree.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import pytest

from anyflow import (
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StepFailedEvent,
    StopEvent,
    Workflow,
    catch_error,
    step,
)
from anyflow.decorators import StepConfig
from anyflow.errors import (
    StartEventError,
    WorkflowConfigurationError,
    WorkflowRuntimeError,
    WorkflowValidationError,
)
from anyflow.representation import get_workflow_representation
from anyflow.representation.validate import (
    GraphValidationError,
    StepGraph,
    build_step_graph,
    validate_graph,
)
from anyflow.resource import Resource, ResourceConfig, ResourceDefinition, ResourceManager
from anyflow.retry import ConstantDelayRetryPolicy

if TYPE_CHECKING:
    from pathlib import Path


class Loop(Event):
    pass


class Done(Event):
    pass


class Lost(Event):
    pass


class Island(Event):
    pass


class Answer(HumanResponseEvent):
    pass


def configs(wf: Workflow) -> dict[str, StepConfig]:
    """What incumbent code builds: ``{name: fn._step_config}`` of ``_get_steps()``."""
    return {name: fn._step_config for name, fn in wf._get_steps().items()}


# -- fn._step_config ---------------------------------------------------------


def test_step_config_is_a_view_of_the_workflows_reading_of_the_step() -> None:
    class Repo:
        pass

    def get_repo() -> Repo:
        return Repo()

    policy = ConstantDelayRetryPolicy(delay=1, maximum_attempts=2)

    class Flow(Workflow):
        @step(num_workers=3, retry_policy=policy, skip_graph_checks=["dead_end"])
        async def go(
            self,
            ctx: Context,
            ev: StartEvent,
            repo: Annotated[Repo, Resource(get_repo)],
        ) -> Done | None:
            return Done()

        @step
        async def end(self, ev: Done) -> StopEvent:
            return StopEvent()

        @catch_error(for_steps=["go"], max_recoveries=2)
        async def rescue(self, ev: StepFailedEvent) -> StopEvent:
            return StopEvent()

    config = Flow.go._step_config  # type: ignore[attr-defined]
    assert isinstance(config, StepConfig)
    assert config.info is Flow.steps()["go"]
    assert config.accepted_events == [StartEvent]
    assert config.event_name == "ev"
    assert config.return_types == [Done]
    assert config.context_parameter == "ctx"
    assert config.context_state_type is None
    assert config.num_workers == 3
    assert config.retry_policy is policy
    assert config.skip_graph_checks == ["dead_end"]
    ((resource),) = config.resources
    assert isinstance(resource, ResourceDefinition)
    assert (resource.name, resource.type_annotation) == ("repo", Repo)
    assert isinstance(resource.resource, Resource)
    assert resource.resource.factory is get_repo
    assert (config.role, config.catch_error_for_steps) == ("step", None)
    assert config.collect_params is None
    rescue = Flow.rescue._step_config  # type: ignore[attr-defined]
    assert (rescue.role, rescue.catch_error_for_steps, rescue.catch_error_max_recoveries) == (
        "catch_error",
        ["go"],
        2,
    )
    # A bound method reads the function's attribute.
    assert Flow().go._step_config is config  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        config.num_workers = 4  # type: ignore[misc]


def test_a_function_step_has_its_config_and_may_take_self() -> None:
    class Flow(Workflow):
        @step
        async def go(self, ev: StartEvent) -> Done:
            return Done()

    seen: list[object] = []

    def finish(self, ev: Done) -> StopEvent:  # type: ignore[no-untyped-def]
        seen.append(self)
        return StopEvent(result="done")

    added = step(workflow=Flow)(finish)
    config = added._step_config  # type: ignore[attr-defined]
    assert (config.accepted_events, config.event_name, config.return_types) == (
        [Done],
        "ev",
        [StopEvent],
    )
    assert Flow._step_functions == {"finish": finish}
    wf = Flow()
    assert wf._get_steps()["finish"] is finish
    assert wf._get_steps()["go"] == wf.go


async def test_a_function_steps_unannotated_self_is_the_workflow() -> None:
    class Flow(Workflow):
        pass

    @step(workflow=Flow)
    async def only(self, ev: StartEvent) -> StopEvent:  # type: ignore[no-untyped-def]
        return StopEvent(result=self)

    wf = Flow()
    assert await wf.run() is wf


# -- wf._get_steps() and wf._validate() --------------------------------------


def test_validate_checks_the_steps_get_steps_gives() -> None:
    class Flow(Workflow):
        @step
        async def ok(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

        @step
        async def other(self, ev: StartEvent) -> None:
            return None

    wf = Flow()
    assert set(wf._get_steps()) == {"ok", "other"}
    assert wf._validate() is False
    only_other = {"other": wf._get_steps()["other"]}
    wf._get_steps = lambda: only_other  # type: ignore[method-assign]
    with pytest.raises(
        WorkflowConfigurationError,
        match=r"^At least one Event of type StopEvent must be returned by any step\. "
        r"\(Workflow 'Flow' has no @step that returns StopEvent\.\)",
    ):
        wf._validate()
    wf._get_steps = dict  # type: ignore[method-assign,assignment]
    with pytest.raises(
        WorkflowConfigurationError, match=r"^Workflow 'Flow' has no configured steps: decorate"
    ):
        wf._validate()
    wf._get_steps = lambda: {"x": print}  # type: ignore[method-assign]
    with pytest.raises(WorkflowValidationError, match=r"_get_steps\(\) gave .* as step 'x'"):
        wf._validate()
    # The workflow's own steps are checked again once the override is gone.
    del wf._get_steps
    assert wf._validate() is False


def test_validate_does_nothing_with_disable_validation_unless_forced() -> None:
    class Flow(Workflow):
        @step
        async def go(self, ev: StartEvent) -> Island:
            return Island()

        @step
        async def end(self, ev: Island) -> None:
            return None

        @step
        async def stop(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

    wf = Flow(disable_validation=True)
    calls: list[int] = []
    wf._get_steps = lambda: calls.append(1) or {}  # type: ignore[method-assign,func-returns-value]
    assert wf._validate() is False
    assert calls == []
    del wf._get_steps
    with pytest.raises(WorkflowValidationError, match=r"^Dead-end steps: go: "):
        wf.validate()


# -- the start event ---------------------------------------------------------


class Topic(StartEvent):
    topic: str


async def test_start_event_class_set_on_the_instance_starts_its_runs() -> None:
    class Flow(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            return StopEvent(result=type(ev).__name__)

    wf, other = Flow(), Flow()
    wf._start_event_class = Topic
    assert (wf.start_event_class, wf._start_event_class) == (Topic, Topic)
    assert other.start_event_class is StartEvent
    assert await wf.run(topic="owls") == "Topic"
    assert await other.run() == "StartEvent"
    with pytest.raises(TypeError, match=r"_start_event_class takes a StartEvent subclass"):
        wf._start_event_class = Done  # type: ignore[assignment]


def test_the_start_event_is_built_or_checked_in_one_place() -> None:
    class Flow(Workflow):
        @step
        async def go(self, ev: Topic) -> StopEvent:
            return StopEvent()

    wf = Flow()
    given = Topic(topic="owls")
    assert wf._get_start_event_instance(given) is given
    assert wf._get_start_event_instance(None, topic="owls") == given
    with pytest.raises(
        WorkflowRuntimeError,
        match=r"^Failed creating a start event of type 'Topic' with the keyword arguments: "
        r"\{'wrong': 1\}",
    ):
        wf._get_start_event_instance(None, wrong=1)
    for bad in ("not an event", 42):
        with pytest.raises(
            ValueError, match=r"^The 'start_event' argument must be an instance of 'StartEvent'\. "
        ) as caught:
            wf.run(start_event=bad)  # type: ignore[arg-type]
        assert isinstance(caught.value, StartEventError)
        assert isinstance(caught.value, TypeError)
    # The incumbent drops fields given beside a start event, with a logged
    # warning; anyflow refuses them.
    with pytest.raises(StartEventError, match=r"^pass either a start event or its fields"):
        wf._get_start_event_instance(given, topic="bats")
    with pytest.raises(StartEventError, match=r"^.*Flow starts with Topic, not StartEvent$"):
        wf._get_start_event_instance(StartEvent())


# -- anyflow.representation.validate -----------------------------------------


def test_graph_checks_list_every_problem_and_validate_raises_them() -> None:
    class Broken(Workflow):
        @step
        async def entry(self, ev: StartEvent) -> Loop | StopEvent:
            return Loop()

        @step
        async def spin(self, ev: Loop) -> Loop:
            return Loop()

        @step
        async def island(self, ev: Island) -> StopEvent | Island:
            return StopEvent()

    wf = Broken()
    problems = validate_graph(steps=configs(wf), start_event_class=wf._start_event_class)
    assert [(p.check, p.step_names) for p in problems] == [
        ("reachability", ["island"]),
        ("dead_end", ["spin"]),
    ]
    reach, dead = problems
    assert isinstance(reach, GraphValidationError)
    assert reach.message == "Unreachable steps: island"
    assert "skip_graph_checks" in reach.hint
    assert dead.message == "Dead-end steps: spin"
    # The same checks, from Workflow.steps(), and from validate(): the first
    # problem's text, the others after it.
    assert validate_graph(Broken.steps(), StartEvent) == problems
    with pytest.raises(
        WorkflowValidationError,
        match=r"^Unreachable steps: island: no event the caller sends .*\n"
        r"Also: Dead-end steps: spin: what they return never leads",
    ):
        wf.validate()
    assert validate_graph(configs(wf), StartEvent, skip_checks={"reachability", "dead_end"}) == []
    assert Broken(skip_graph_checks={"reachability", "dead_end"}).validate() is False


def test_terminal_events_are_one_problem_naming_every_event() -> None:
    class Dangling(Workflow):
        @step
        async def go(self, ev: StartEvent) -> Lost | Island | StopEvent:
            return StopEvent()

    (problem,) = validate_graph(configs(Dangling()), StartEvent)
    assert (problem.check, problem.step_names) == ("terminal_event", [])
    assert problem.message == "Events produced but never consumed: Island, Lost"
    with pytest.raises(
        WorkflowValidationError,
        match=r"^The following events are produced but never consumed: Island, Lost \(Dangling"
        r"\.go returns Island; Dangling\.go returns Lost, but no step accepts it\)",
    ):
        Dangling().validate()
    assert validate_graph(configs(Dangling()), StartEvent, skip_checks={"terminal_event"}) == []


def test_a_steps_own_skip_exempts_it() -> None:
    class Flow(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

        @step(skip_graph_checks=["reachability"])
        async def later(self, ev: Island) -> Island | StopEvent:  # feeds only itself
            return StopEvent()

    assert validate_graph(configs(Flow()), StartEvent) == []
    assert Flow().validate() is False


def test_the_step_graph() -> None:
    class Flow(Workflow):
        @step
        async def ask(self, ev: StartEvent) -> InputRequiredEvent | Done:
            return Done()

        @step
        async def answered(self, ev: Answer) -> StopEvent:
            return StopEvent()

        @step
        async def finish(self, ev: Done) -> StopEvent:
            return StopEvent()

        @step
        async def note(self, ev: Done) -> None:
            return None

        @step(skip_graph_checks=["reachability", "dead_end"])
        async def spin(self, ev: Loop) -> Loop:
            return Loop()

    graph = build_step_graph(configs(Flow()), start_event_class=StartEvent)
    assert isinstance(graph, StepGraph)
    assert graph.step_names == {"ask", "answered", "finish", "note", "spin"}
    assert graph.event_types == {StartEvent, InputRequiredEvent, Done, Answer, StopEvent, Loop}
    assert graph.outgoing["ask"] == [InputRequiredEvent, Done]
    assert graph.outgoing[Done] == ["finish", "note"]
    assert graph.outgoing[StartEvent] == ["ask"]
    assert "note" not in graph.outgoing  # returns nothing
    assert StopEvent not in graph.outgoing  # ends the run, goes to no step
    # The caller's events (the start event, a HumanResponseEvent) are seeds.
    assert {"ask", "answered", "finish", "note", Answer} <= graph.forward_reachable
    assert "spin" not in graph.forward_reachable
    assert {"ask", "answered", "finish"} <= graph.reverse_reachable
    assert "spin" not in graph.reverse_reachable
    empty = build_step_graph({}, StartEvent)
    assert (empty.step_names, empty.outgoing, empty.event_types) == (set(), {}, set())
    assert StartEvent in empty.forward_reachable


def test_validate_graph_refuses_what_is_not_a_step() -> None:
    with pytest.raises(TypeError, match=r"step 'x': expected a StepConfig"):
        validate_graph({"x": object()}, StartEvent)


# -- incumbent wording first -------------------------------------------------


def test_an_unresolvable_annotation_names_the_missing_name() -> None:
    with pytest.raises(
        WorkflowValidationError,
        match=r"^Failed to resolve type annotations for .*Bad\.go\. Missing name: Nowhere\. "
        r"Define the types it names before the workflow class",
    ):

        class Bad(Workflow):
            @step
            async def go(self, ev: StartEvent) -> Nowhere:  # type: ignore[name-defined]  # noqa: F821
                return StopEvent()


def test_catch_error_on_another_event_is_refused_when_decorated() -> None:
    with pytest.raises(
        WorkflowValidationError,
        match=r"^@catch_error handler 'bad' must accept StepFailedEvent as its event parameter\. "
        r"It takes StartEvent: write `async def bad\(self, ev: StepFailedEvent",
    ):

        @catch_error
        async def bad(self: Any, ctx: Context, ev: StartEvent) -> StopEvent:
            return StopEvent()


async def test_a_second_run_on_a_busy_context_is_refused() -> None:
    class Flow(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            return StopEvent(result=1)

    wf = Flow()
    ctx = Context(wf)
    async with wf.run(ctx=ctx) as handler:
        with pytest.raises(
            Exception,
            match=r"^Cannot start a new run while context is already running\. Wait for "
            r"completion or use a new Context\. This context belongs to run",
        ):
            wf.run(ctx=ctx)
        assert await handler == 1


# -- resources ---------------------------------------------------------------


async def test_resource_call_makes_a_value_with_its_dependencies() -> None:
    def base() -> int:
        return 2

    async def doubled(n: Annotated[int, Resource(base)]) -> int:
        return n * 2

    sync, made = Resource(base), Resource(doubled)
    assert (sync._is_async, made._is_async) == (False, True)
    manager = ResourceManager()
    assert await made.call(manager) == 4
    assert manager.get_all() == {}  # call() keeps nothing
    await manager.set(sync.name, 10)
    assert await made.call(manager) == 20
    assert await made.call() == 4


def test_a_config_node_names_the_files_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "settings.json").write_text(json.dumps({"db": {"url": "u"}}))
    config = ResourceConfig("settings.json", path_selector="db")
    assert config.path == str(tmp_path / "settings.json")
    assert config.name == "settings.json.db"  # the name a ResourceManager holds it by

    class Flow(Workflow):
        @step
        async def go(self, ev: StartEvent, db: Annotated[dict, config]) -> StopEvent:  # type: ignore[type-arg]
            return StopEvent()

    graph = get_workflow_representation(Flow)
    (node,) = (n for n in graph.nodes if n.node_type == "resource_config")
    assert node.config_file == str(tmp_path / "settings.json")
    assert node.config_value == {"url": "u"}
