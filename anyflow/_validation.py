"""Checking a workflow's shape before anything runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import WorkflowConfigurationError, WorkflowValidationError
from .events import (
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StepFailedEvent,
    StopEvent,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from ._steps import StepInfo


def _names(types: Iterable[type[Event]]) -> str:
    return ", ".join(sorted({t.__name__ for t in types}))


GRAPH_CHECKS = frozenset({"reachability", "terminal_event", "dead_end"})
"""The graph checks ``Workflow(skip_graph_checks=...)`` may turn off; for one step,
``@step(skip_graph_checks=...)`` takes ``reachability`` and ``dead_end``."""

STEP_GRAPH_CHECKS = frozenset({"reachability", "dead_end"})


def check_graph_check_names(names: Iterable[str], allowed: frozenset[str], where: str) -> None:
    """Refuse a graph check name that is not one of ``allowed`` (a typo would skip nothing)."""
    if isinstance(names, str):
        raise TypeError(f"{where} takes a list of check names, e.g. [{names!r}]")
    unknown = sorted(set(names) - allowed)
    if unknown:
        raise WorkflowValidationError(
            f"{where} names unknown graph checks: {', '.join(unknown)}; "
            f"the checks are: {', '.join(sorted(allowed))}"
        )


def start_and_stop(
    workflow: str, steps: Mapping[str, StepInfo]
) -> tuple[type[StartEvent], type[StopEvent]]:
    """The one start event class and the one stop event class of a workflow.

    Checked when the workflow is built, as llama-index-workflows does, with its
    wording first so code that matches its messages keeps working.

    :raises WorkflowConfigurationError: for no steps, or not exactly one of each.
    """
    name = workflow.rsplit(".", 1)[-1]
    if not steps:
        raise WorkflowConfigurationError(
            f"Workflow '{name}' has no configured steps: decorate its methods with @step, "
            "or attach functions with @step(workflow=...)"
        )
    starts = {t for s in steps.values() for t in s.accepts if issubclass(t, StartEvent)}
    if not starts:
        raise WorkflowConfigurationError(
            "At least one Event of type StartEvent must be received by any step. "
            f"(Workflow '{name}' has no @step that accepts StartEvent.) A run could not "
            "begin: give one step an `ev: StartEvent` parameter (or a StartEvent subclass)"
        )
    if len(starts) > 1:
        raise WorkflowConfigurationError(
            f"Only one type of StartEvent is allowed per workflow, found {len(starts)}: "
            f"the steps of {name} accept different start events ({_names(starts)}); "
            "a run begins with one start event class"
        )
    stops = {t for s in steps.values() for t in s.returns if issubclass(t, StopEvent)}
    if not stops:
        raise WorkflowConfigurationError(
            "At least one Event of type StopEvent must be returned by any step. "
            f"(Workflow '{name}' has no @step that returns StopEvent.) A run could never "
            "finish: annotate the last step `-> StopEvent` and return StopEvent(result=...)"
        )
    if len(stops) > 1:
        raise WorkflowConfigurationError(
            f"Only one type of StopEvent is allowed per workflow, found {len(stops)}: "
            f"the steps of {name} return different stop events ({_names(stops)}); a run "
            "ends with one stop event class, so callers know what they get back"
        )
    ((start,), (stop,)) = (starts, stops)
    return start, stop


def validate(
    workflow: str, steps: Mapping[str, StepInfo], skip: frozenset[str] = frozenset()
) -> bool:
    """Check the event graph; return whether the workflow asks for human input.

    Rules: every event a step returns is accepted by some step (or goes to the
    caller: a StopEvent or InputRequiredEvent); every event a step accepts is
    returned by some step or sent by the caller (the start event,
    HumanResponseEvent); no step accepts a StopEvent; and, unless skipped, every
    step is reachable from what the caller sends, and every step that returns
    events can lead to an output for the caller.

    :raises WorkflowValidationError: naming the workflow, the steps and the events.
    """
    start, _ = start_and_stop(workflow, steps)
    name = workflow.rsplit(".", 1)[-1]
    produced = {t for s in steps.values() for t in s.returns}
    stop_takers = sorted(
        s.name for s in steps.values() if any(issubclass(t, StopEvent) for t in s.accepts)
    )
    if stop_takers:
        raise WorkflowValidationError(
            f"Step '{', '.join(stop_takers)}' cannot accept StopEvent. StopEvent signals the "
            "end of the workflow. Use a different Event type instead: a StopEvent ends the "
            "run and is never delivered to a step"
        )
    unfed: dict[type[Event], list[str]] = {}
    for s in steps.values():
        for t in s.accepts:
            if issubclass(t, StartEvent | HumanResponseEvent | InputRequiredEvent):
                continue
            if t is StepFailedEvent and s.options.catch is not None:
                continue
            if not any(issubclass(p, t) for p in produced):
                unfed.setdefault(t, []).append(s.name)
    if unfed:
        detail = "; ".join(
            f"{', '.join(f'{name}.{n}' for n in users)} accepts {t.__name__}"
            for t, users in unfed.items()
        )
        raise WorkflowValidationError(
            f"The following events are consumed but never produced: {_names(unfed)} ({detail}, "
            "but no step returns it and the caller cannot send it): return it from a step "
            "(and say so in that step's return annotation), or make it a HumanResponseEvent "
            "subclass if the caller sends it"
        )
    if "terminal_event" not in skip:
        orphans: dict[type[Event], list[str]] = {}
        for s in steps.values():
            for t in s.returns:
                if issubclass(t, StopEvent | InputRequiredEvent):
                    continue
                if not any(issubclass(t, other.accepts) for other in steps.values()):
                    orphans.setdefault(t, []).append(s.name)
        if orphans:
            detail = "; ".join(
                f"{', '.join(f'{name}.{n}' for n in makers)} returns {t.__name__}"
                for t, makers in orphans.items()
            )
            raise WorkflowValidationError(
                f"The following events are produced but never consumed: {_names(orphans)} "
                f"({detail}, but no step accepts it): add a step that accepts it, or remove "
                "it from the return annotation (only a StopEvent or InputRequiredEvent goes "
                "to the caller)"
            )
    _check_paths(name, steps, start, skip)
    return any(
        issubclass(t, HumanResponseEvent | InputRequiredEvent)
        for s in steps.values()
        for t in (*s.accepts, *s.returns)
    )


def _check_paths(
    name: str, steps: Mapping[str, StepInfo], start: type[StartEvent], skip: frozenset[str]
) -> None:
    """Reachability and dead ends, over the graph step -> returned event -> accepting step."""

    def takers(t: type[Event]) -> list[str]:
        return [s.name for s in steps.values() if issubclass(t, s.accepts)]

    if "reachability" not in skip:
        seen: set[str] = set()
        todo = [s.name for s in steps.values() if s.options.catch is not None]
        todo += takers(start)
        todo += [
            s.name
            for s in steps.values()
            if any(issubclass(t, HumanResponseEvent) for t in s.accepts)
        ]
        while todo:
            step = todo.pop()
            if step not in seen:
                seen.add(step)
                todo += [n for t in steps[step].returns for n in takers(t)]
        unreachable = sorted(
            s.name
            for s in steps.values()
            if s.name not in seen and "reachability" not in s.options.skip_graph_checks
        )
        if unreachable:
            raise WorkflowValidationError(
                f"Unreachable steps: {', '.join(unreachable)}: no event the caller sends "
                f"(the start event, a HumanResponseEvent) leads to them in {name}; connect "
                "them, or skip the check with @step(skip_graph_checks=['reachability']) or "
                "Workflow(skip_graph_checks={'reachability'})"
            )
    if "dead_end" not in skip:
        leads_out: set[str] = set()
        changed = True
        while changed:
            changed = False
            for s in steps.values():
                if s.name in leads_out:
                    continue
                if any(
                    issubclass(t, StopEvent | InputRequiredEvent)
                    or any(n in leads_out for n in takers(t))
                    for t in s.returns
                ):
                    leads_out.add(s.name)
                    changed = True
        dead = sorted(
            s.name
            for s in steps.values()
            if s.returns
            and s.name not in leads_out
            and "dead_end" not in s.options.skip_graph_checks
        )
        if dead:
            raise WorkflowValidationError(
                f"Dead-end steps: {', '.join(dead)}: what they return never leads to a "
                f"StopEvent or an InputRequiredEvent in {name}, so a run through them could "
                "not finish; skip the check with @step(skip_graph_checks=['dead_end']) or "
                "Workflow(skip_graph_checks={'dead_end'}) if that is intended"
            )


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
