"""Checking a workflow's shape before anything runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import WorkflowConfigurationError, WorkflowValidationError
from .events import (
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StepFailedEvent,
    StopEvent,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._steps import StepInfo


def _names(types: set[type[StartEvent]]) -> str:
    return ", ".join(sorted(t.__name__ for t in types))


def validate(workflow: str, steps: Mapping[str, StepInfo]) -> type[StartEvent]:
    """Check the event graph; return the workflow's start event class.

    Rules: a step accepts the start event; some step returns a StopEvent; every
    event a step returns is accepted by some step (or goes to the caller: a
    StopEvent or InputRequiredEvent); every event a step accepts is returned by
    some step or sent by the caller (the start event, HumanResponseEvent).

    :raises WorkflowValidationError: naming the workflow, the step and the event.
    """
    if not steps:
        raise WorkflowConfigurationError(
            f"workflow {workflow} has no steps: decorate its async methods with @step"
        )
    starts = {t for s in steps.values() for t in s.accepts if issubclass(t, StartEvent)}
    if not starts:
        raise WorkflowConfigurationError(
            f"no step of {workflow} accepts a StartEvent, so a run could not begin: "
            "give one step an `ev: StartEvent` parameter (or a StartEvent subclass)"
        )
    if len(starts) > 1:
        raise WorkflowValidationError(
            f"steps of {workflow} accept different start events ({_names(starts)}): "
            "a workflow has one start event class"
        )
    produced = {t for s in steps.values() for t in s.returns}
    if not any(issubclass(t, StopEvent) for t in produced):
        raise WorkflowConfigurationError(
            f"no step of {workflow} returns a StopEvent, so a run could never finish: "
            "annotate the last step `-> StopEvent` and return StopEvent(result=...)"
        )
    for s in steps.values():
        for t in s.returns:
            if issubclass(t, StopEvent | InputRequiredEvent):
                continue
            if not any(issubclass(t, other.accepts) for other in steps.values()):
                raise WorkflowValidationError(
                    f"step {workflow}.{s.name} returns {t.__name__}, but no step of {workflow} "
                    f"accepts it: add a step with an `ev: {t.__name__}` parameter, or remove it "
                    "from the return annotation"
                )
        for t in s.accepts:
            if issubclass(t, StopEvent):
                raise WorkflowValidationError(
                    f"step {workflow}.{s.name} accepts {t.__name__}, but a StopEvent ends the "
                    "run and is never delivered to a step"
                )
            if issubclass(t, StartEvent | HumanResponseEvent | InputRequiredEvent):
                continue
            if t is StepFailedEvent and s.options.catch is not None:
                continue
            if not any(issubclass(p, t) for p in produced):
                raise WorkflowValidationError(
                    f"step {workflow}.{s.name} accepts {t.__name__}, but no step of {workflow} "
                    f"returns it and the caller cannot send it: return it from a step (and "
                    f"say so in that step's return annotation), or make it a HumanResponseEvent "
                    "subclass if the caller sends it"
                )
    (start,) = starts
    return start


def catchers(workflow: str, steps: Mapping[str, StepInfo]) -> dict[str, tuple[str, int]]:
    """Which ``@catch_error`` step handles each step's failures, and how often.

    A catcher with ``for_steps`` handles those steps; one without handles every
    other step (catchers are never caught themselves).

    :raises WorkflowValidationError: for a catcher that does not accept
        StepFailedEvent, names an unknown step, or competes with another.
    """
    specific: dict[str, tuple[str, int]] = {}
    catch_all: tuple[str, int] | None = None
    for s in steps.values():
        catch = s.options.catch
        if catch is None:
            continue
        if StepFailedEvent not in s.accepts:
            raise WorkflowValidationError(
                f"@catch_error step {workflow}.{s.name} must accept StepFailedEvent: "
                f"write `async def {s.name}(self, ev: StepFailedEvent) -> ...`"
            )
        if catch.for_steps is None:
            if catch_all is not None:
                raise WorkflowValidationError(
                    f"{workflow} has two @catch_error steps for every step ({catch_all[0]}, "
                    f"{s.name}): give one of them for_steps=[...]"
                )
            catch_all = (s.name, catch.max_recoveries)
            continue
        for name in catch.for_steps:
            if name not in steps:
                raise WorkflowValidationError(
                    f"@catch_error step {workflow}.{s.name} names {name!r} in for_steps, but "
                    f"{workflow} has no such step; its steps are: {', '.join(sorted(steps))}"
                )
            if name in specific:
                raise WorkflowValidationError(
                    f"step {workflow}.{name} has two @catch_error steps: "
                    f"{specific[name][0]} and {s.name}"
                )
            specific[name] = (s.name, catch.max_recoveries)
    caught = {}
    for name, s in steps.items():
        if s.options.catch is not None:
            continue
        handler = specific.get(name, catch_all)
        if handler is not None:
            caught[name] = handler
    return caught
