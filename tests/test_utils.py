"""anyflow.utils: the incumbent's step-signature helpers, reading annotations
as anyflow's steps do."""

from __future__ import annotations

from typing import Annotated, Any

import attrs
import pytest

from anyflow import (
    Context,
    Event,
    Resource,
    StartEvent,
    StopEvent,
    Workflow,
    WorkflowValidationError,
    catch_error,
    step,
)
from anyflow.events import StepFailedEvent  # noqa: TC001 (read when Flow is made)
from anyflow.utils import (
    get_steps_from_class,
    get_steps_from_instance,
    inspect_signature,
    validate_step_signature,
)


class Found(Event):
    pass


class Missing(Event):
    pass


@attrs.define
class Counter:
    n: int = 0


def make_client() -> str:
    return "client"


async def full(
    self: Any,
    ev: Found | Missing,
    ctx: Context[Counter],
    client: Annotated[str, Resource(make_client)],
) -> StopEvent | None:
    return None


def test_a_step_signature_is_read_without_self_context_or_resources() -> None:
    spec = inspect_signature(full)

    assert spec.accepted_events == {"ev": [Found, Missing]}
    assert spec.return_types == [StopEvent]  # None left out
    assert spec.context_parameter == "ctx"
    assert spec.context_state_type is Counter
    assert [name for name, _ in spec.resources] == ["client"]
    assert spec.resources[0][1].factory is make_client
    validate_step_signature(spec)


def test_joins_and_list_parameters_are_read_as_steps_read_them() -> None:
    def join(self: Any, ev: Found, ctx: Context, other: Missing) -> StopEvent:
        return StopEvent()

    def gather(self: Any, events: list[Found | Missing]) -> StopEvent:
        return StopEvent()

    spec = inspect_signature(join)
    assert spec.accepted_events == {"ev": [Found], "other": [Missing]}
    assert spec.collection_param is None
    validate_step_signature(spec)
    spec = inspect_signature(gather)
    assert spec.accepted_events == {"events": [Found, Missing]}
    assert spec.collection_param == ("events", (Found, Missing))
    validate_step_signature(spec)


def test_a_free_function_and_an_untyped_context() -> None:
    def free(ctx: Context, ev: StartEvent) -> Found:
        return Found()

    spec = inspect_signature(free)
    assert (spec.accepted_events, spec.context_parameter) == ({"ev": [StartEvent]}, "ctx")
    assert spec.context_state_type is None
    validate_step_signature(spec)


def test_what_validation_refuses_and_how_it_says_so() -> None:
    def no_event(self: Any, ctx: Context, n: int) -> StopEvent:
        return StopEvent()

    def union_in_a_join(ev: Found, other: Missing | StartEvent) -> StopEvent:
        return StopEvent()

    def list_beside_an_event(ev: Found, others: list[Missing]) -> StopEvent:
        return StopEvent()

    def two_lists(some: list[Found], others: list[Missing]) -> StopEvent:
        return StopEvent()

    def no_return(ev: Found):  # type: ignore[no-untyped-def]
        return None

    def not_only_events(ev: Found | str) -> StopEvent:
        return StopEvent()

    with pytest.raises(
        WorkflowValidationError,
        match=r"^Step signature must have at least one parameter annotated as type Event",
    ):
        validate_step_signature(inspect_signature(no_event))
    with pytest.raises(
        WorkflowValidationError,
        match=r"each to declare a single event type, but 'other' declares 2 "
        r"\(Missing \| StartEvent\)",
    ):
        validate_step_signature(inspect_signature(union_in_a_join))
    with pytest.raises(
        WorkflowValidationError,
        match=r"^A list\[E\] collection parameter cannot be combined with other event "
        r"parameters \(ev, others\)",
    ):
        validate_step_signature(inspect_signature(list_beside_an_event))
    with pytest.raises(
        WorkflowValidationError, match=r"at most one list\[E\] collection parameter"
    ):
        inspect_signature(two_lists)
    with pytest.raises(
        WorkflowValidationError,
        match=r"^Return types of workflows step functions must be annotated with their type",
    ):
        validate_step_signature(inspect_signature(no_return))
    with pytest.raises(WorkflowValidationError, match=r"at least one parameter"):
        validate_step_signature(inspect_signature(not_only_events))


def test_inspect_signature_refuses_what_is_not_callable() -> None:
    with pytest.raises(TypeError, match=r"^Expected a callable object, got str$"):
        inspect_signature("step")  # type: ignore[arg-type]


def test_unresolvable_annotations_say_how_to_fix_them() -> None:
    def later(ev: NotYetDefined) -> StopEvent:  # type: ignore[name-defined]  # noqa: F821
        return StopEvent()

    with pytest.raises(WorkflowValidationError, match=r"NotYetDefined.*localns="):
        inspect_signature(later)
    assert inspect_signature(later, localns={"NotYetDefined": Found}).accepted_events == {
        "ev": [Found]
    }


class Flow(Workflow):
    @step
    async def start(self, ev: StartEvent) -> StopEvent:
        return StopEvent()

    @catch_error
    async def recover(self, ev: StepFailedEvent) -> StopEvent:
        return StopEvent()

    async def helper(self) -> None:
        pass


def test_steps_of_a_class_and_of_an_instance() -> None:
    assert sorted(get_steps_from_class(Flow)) == ["recover", "start"]
    assert get_steps_from_class(Flow)["start"] is Flow.__dict__["start"]
    flow = Flow()
    methods = get_steps_from_instance(flow)
    assert sorted(methods) == ["recover", "start"]
    assert methods["start"].__self__ is flow  # type: ignore[attr-defined]
    assert sorted(get_steps_from_class(Flow)) == sorted(Flow.steps())
