from __future__ import annotations

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
    WorkflowValidationError,
    step,
)


class A(Event):
    pass


class B(Event):
    pass


def test_step_without_event_annotation_is_rejected_when_the_class_is_defined() -> None:
    with pytest.raises(
        WorkflowValidationError,
        match=r"^step .*Bad\.go has no annotated event parameter, .* write e\.g\. `async def go\(self, ev: StartEvent\) -> StopEvent`$",
    ):

        class Bad(Workflow):
            @step
            async def go(self, ev) -> StopEvent:  # type: ignore[no-untyped-def]
                return StopEvent()


def test_step_without_return_annotation_is_rejected() -> None:
    with pytest.raises(WorkflowValidationError, match=r"step .*Bad\.go has no return annotation"):

        class Bad(Workflow):
            @step
            async def go(self, ev: StartEvent):  # type: ignore[no-untyped-def]
                return StopEvent()


def test_async_generator_step_is_rejected() -> None:
    with pytest.raises(
        WorkflowValidationError,
        match=r"must be a function that returns an event: write `async def go`",
    ):

        class Bad(Workflow):
            @step
            async def go(self, ev: StartEvent) -> StopEvent:  # type: ignore[misc]
                yield StopEvent()


def test_non_event_annotation_is_rejected() -> None:
    with pytest.raises(
        WorkflowValidationError, match=r"accepts <class 'int'>, which is not an Event"
    ):

        class Bad(Workflow):
            @step
            async def go(self, ev: int) -> StopEvent:
                return StopEvent()


def test_no_step_accepts_the_start_event() -> None:
    class NoStart(Workflow):
        @step
        async def go(self, ev: A) -> StopEvent:
            return StopEvent()

    with pytest.raises(
        WorkflowConfigurationError,
        match=r"^At least one Event of type StartEvent must be received by any step\. "
        r"\(Workflow 'NoStart' has no @step that accepts StartEvent\.\) A run could not begin",
    ):
        NoStart()


def test_no_step_returns_a_stop_event() -> None:
    class NoStop(Workflow):
        @step
        async def go(self, ev: StartEvent) -> None:
            return None

    with pytest.raises(
        WorkflowConfigurationError,
        match=r"^At least one Event of type StopEvent must be returned by any step\. "
        r"\(Workflow 'NoStop' has no @step that returns StopEvent\.\) A run could never finish",
    ):
        NoStop()


def test_produced_event_nobody_accepts() -> None:
    class Orphan(Workflow):
        @step
        async def go(self, ev: StartEvent) -> A | StopEvent:
            return StopEvent()

    with pytest.raises(
        WorkflowValidationError,
        match=r"^The following events are produced but never consumed: A \(Orphan\.go returns A, "
        r"but no step accepts it\): add a step that accepts it",
    ):
        Orphan().validate()


def test_accepted_event_nobody_produces() -> None:
    class Unfed(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

        @step
        async def never(self, ev: B) -> StopEvent:
            return StopEvent()

    with pytest.raises(
        WorkflowValidationError,
        match=r"^The following events are consumed but never produced: B \(Unfed\.never accepts B, "
        r"but no step returns it and the caller cannot send it\)",
    ):
        Unfed().validate()


def test_two_start_event_classes() -> None:
    class S1(StartEvent):
        x: int

    class Two(Workflow):
        @step
        async def one(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

        @step
        async def two(self, ev: S1) -> StopEvent:
            return StopEvent()

    with pytest.raises(
        WorkflowConfigurationError,
        match=r"^Only one type of StartEvent is allowed per workflow, found 2: the steps of Two "
        r"accept different start events \(S1, StartEvent\)",
    ):
        Two()


def test_human_in_the_loop_events_pass_validation_and_unions_are_read() -> None:
    class Ask(Workflow):
        @step
        async def ask(self, ev: StartEvent) -> InputRequiredEvent:
            return InputRequiredEvent(prefix="?")

        @step
        async def answer(self, ev: HumanResponseEvent | A, ctx: Context) -> StopEvent | A | None:
            return StopEvent()

    Ask()
    steps = Ask.steps()
    assert steps["answer"].accepts == (HumanResponseEvent, A)
    assert steps["answer"].returns == (StopEvent, A)


def test_local_event_classes_resolve_with_postponed_annotations() -> None:
    # This module uses `from __future__ import annotations`: every annotation is
    # a string, and Local exists only in this function's frame.
    class Local(Event):
        n: int

    class UsesLocal(Workflow):
        @step
        async def go(self, ev: StartEvent) -> Local:
            return Local(n=1)

        @step
        async def end(self, ev: Local) -> StopEvent:
            return StopEvent(result=ev.n)

    assert UsesLocal.steps()["end"].accepts == (Local,)


def test_step_options_are_checked() -> None:
    with pytest.raises(
        ValueError,
        match=r"^num_workers must be an integer greater than 0 \(a whole number >= 1\), not 0$",
    ):
        step(num_workers=0)
    with pytest.raises(WorkflowValidationError, match=r"^num_workers must be an integer"):
        step(num_workers=0.5)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"^retry_policy must have a next\("):
        step(retry_policy=object())  # type: ignore[arg-type]


def test_timeout_is_checked() -> None:
    class Fine(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            return StopEvent()

    with pytest.raises(
        ValueError, match=r"^timeout must be a positive number of seconds or None, not -1$"
    ):
        Fine(timeout=-1)


def test_steps_are_inherited_and_can_be_overridden() -> None:
    class Base(Workflow):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            return StopEvent(result="base")

    class Child(Base):
        @step
        async def go(self, ev: StartEvent) -> StopEvent:
            return StopEvent(result="child")

        @step
        async def extra(self, ev: A) -> StopEvent:
            return StopEvent()

    assert set(Child.steps()) == {"go", "extra"}
    assert set(Base.steps()) == {"go"}
