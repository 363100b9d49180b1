"""Checking a workflow's shape before anything runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

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


def _names(types: Iterable[type]) -> str:
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
            exact = s.options.accept_event_subclasses is False
            if not any(p is t if exact else issubclass(p, t) for p in produced):
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
    differences = routing_differences(steps, workflow=name)
    if differences:
        raise WorkflowValidationError("\nAlso: ".join(differences))
    problems = graph_problems(steps, start, skip, workflow=name)
    if problems:
        # An event nobody takes first: it is the likeliest cause of the others.
        first, *rest = sorted(problems, key=lambda p: p.check != "terminal_event")
        raise WorkflowValidationError(first.detail + "".join(f"\nAlso: {p.detail}" for p in rest))
    return any(
        issubclass(t, HumanResponseEvent | InputRequiredEvent)
        for s in steps.values()
        for t in (*s.accepts, *s.returns)
    )


def routing_differences(
    steps: Mapping[str, StepInfo], *, workflow: str = "the workflow"
) -> list[str]:
    """Where anyflow would route an event class differently from
    llama-index-workflows, one message each.

    llama-index-workflows gives an event only to the steps that name its exact
    class, unless a step says ``@step(accept_event_subclasses=True)``; anyflow
    also gives it to the steps that name a base class of it, unless a step says
    ``False``.  The two agree on every program but one where a class is named
    by one step and reaches another, which said nothing, through a base class:
    that program would run differently, so it is refused until the base-class
    step says which it means.  ``@catch_error`` steps are routed by failure,
    not by class, and ``StopEvent`` classes are never delivered: neither counts.
    """
    plain = [s for s in steps.values() if s.options.catch is None]
    classes = {t for s in plain for t in (*s.accepts, *s.returns)}
    found: list[str] = []
    for c in sorted(classes, key=_type_order):
        if issubclass(c, StopEvent):
            continue
        exact = [s.name for s in plain if c in s.accepts]
        through = [
            s
            for s in plain
            if s.options.accept_event_subclasses is None
            and c not in s.accepts
            and issubclass(c, s.accepts)
        ]
        for s in plain:
            # A join taking C in one parameter and a base class of it in another:
            # here a C may fill either, there only its own.
            own_bases = [b for b in s.accepts if b is not c and issubclass(c, b)]
            if s.options.accept_event_subclasses is None and c in s.accepts and own_bases:
                names = ", ".join(b.__name__ for b in own_bases)
                found.append(
                    f"Event routing would differ from llama-index-workflows: {workflow}.{s.name} "
                    f"takes {c.__name__} in one parameter and its base class {names} in "
                    f"another. llama-index-workflows fills the {names} parameter only with "
                    f"{names} itself; anyflow fills it with a {c.__name__} too. Say which you "
                    f"mean: @step(accept_event_subclasses=False) for llama-index-workflows' "
                    f"filling, or @step(accept_event_subclasses=True) to keep anyflow's"
                )
        if not exact or not through:
            continue
        named = " and ".join(f"{workflow}.{n}" for n in exact)
        for s in through:
            bases = ", ".join(b.__name__ for b in s.accepts if issubclass(c, b))
            found.append(
                f"Event routing would differ from llama-index-workflows: {c.__name__} is "
                f"accepted by {named} (its own class) and by {workflow}.{s.name} through "
                f"its base class {bases}. llama-index-workflows gives a {c.__name__} only to "
                f"{', '.join(exact)} (a step takes only the exact classes it names unless "
                f"it says accept_event_subclasses=True); anyflow gives it to "
                f"{s.name} too. Say which you mean on {s.name}: "
                f"@step(accept_event_subclasses=False) for llama-index-workflows' routing "
                f"({s.name} takes only {bases} itself), or @step(accept_event_subclasses=True) "
                f"to give a {c.__name__} to both steps"
            )
    return found


GraphNode = str | type
"""A node of a ``StepGraph``: a step's name, or an event class."""


@attrs.define
class StepGraph:
    """A workflow's steps and events as a directed graph (llama-index-workflows'
    ``StepGraph``, the graph its graph checks walk).

    An edge from an event class to a step name: the step takes that event (or a
    subclass of what it takes: anyflow routes subclasses); from a step name to
    an event class: the step returns it.  ``StopEvent`` classes lead to no step
    (they end the run).
    """

    outgoing: dict[GraphNode, list[GraphNode]] = attrs.field(factory=dict)
    """Each node's successors (only nodes that have some)."""
    event_types: set[type] = attrs.field(factory=set)
    """Every event class in the graph: the start event, what steps take and return."""
    step_names: set[str] = attrs.field(factory=set)
    forward_reachable: set[GraphNode] = attrs.field(factory=set)
    """What can be reached from what the caller sends: the start event class,
    ``HumanResponseEvent`` subclasses, and ``@catch_error`` steps (reached
    through failures)."""
    reverse_reachable: set[GraphNode] = attrs.field(factory=set)
    """What can reach an output to the caller: a ``StopEvent`` or an
    ``InputRequiredEvent`` class."""


def build_step_graph(
    steps: Mapping[str, StepInfo],
    start_event_class: type,
    catch_error_steps: Iterable[str] = (),
) -> StepGraph:
    """The ``StepGraph`` of ``steps`` (``Workflow.steps()``) for a run that begins
    with ``start_event_class``; ``catch_error_steps`` are reached as
    ``@catch_error`` steps are (their own are found from the steps)."""
    outgoing: dict[GraphNode, list[GraphNode]] = {}
    event_types: set[type] = {start_event_class} if steps else set()
    for info in steps.values():
        event_types.update(info.accepts)
        event_types.update(info.returns)
        if info.returns:
            outgoing[info.name] = list(info.returns)
    for t in sorted(event_types, key=_type_order):
        if issubclass(t, StopEvent):
            continue
        takers: list[GraphNode] = [s.name for s in steps.values() if s.takes(t)]
        if takers:
            outgoing[t] = takers
    seeds: list[GraphNode] = [start_event_class]
    seeds += [t for t in event_types if issubclass(t, HumanResponseEvent)]
    seeds += [s.name for s in steps.values() if s.options.catch is not None]
    seeds += list(catch_error_steps)
    incoming: dict[GraphNode, list[GraphNode]] = {}
    for source, targets in outgoing.items():
        for target in targets:
            incoming.setdefault(target, []).append(source)
    outputs: list[GraphNode] = [
        t for t in event_types if issubclass(t, StopEvent | InputRequiredEvent)
    ]
    return StepGraph(
        outgoing=outgoing,
        event_types=event_types,
        step_names={s.name for s in steps.values()},
        forward_reachable=_reachable(seeds, outgoing),
        reverse_reachable=_reachable(outputs, incoming),
    )


def _type_order(t: type) -> str:
    return f"{t.__module__}.{t.__qualname__}"


def _reachable(
    seeds: Iterable[GraphNode], edges: Mapping[GraphNode, list[GraphNode]]
) -> set[GraphNode]:
    seen: set[GraphNode] = set()
    todo = list(seeds)
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo += edges.get(node, ())
    return seen


@attrs.define
class GraphValidationError:
    """One failed graph check (llama-index-workflows' ``GraphValidationError``,
    a record, not an exception): ``Workflow.validate()`` raises the first as a
    ``WorkflowValidationError`` with its ``detail``, the others noted after it."""

    check: str
    """``reachability``, ``terminal_event`` or ``dead_end``."""
    message: str
    """What failed, e.g. ``Unreachable steps: a, b``."""
    hint: str
    """What to do about it."""
    step_names: list[str] = attrs.field(factory=list)
    """The steps at fault (none for ``terminal_event``: it is about events)."""
    detail: str = attrs.field(default="", eq=False, repr=False)
    """The text ``Workflow.validate()`` raises: what failed, where, and the fix."""


def graph_problems(
    steps: Mapping[str, StepInfo],
    start: type,
    skip: Iterable[str] = frozenset(),
    *,
    catch_error_steps: Iterable[str] = (),
    workflow: str = "the workflow",
) -> list[GraphValidationError]:
    """Every failed graph check of ``steps``, in the order reachability,
    terminal events, dead ends; ``skip`` names checks not to run, and a step's
    ``@step(skip_graph_checks=...)`` exempts it."""
    skip = frozenset(skip)
    graph = build_step_graph(steps, start, catch_error_steps)
    found: list[GraphValidationError] = []

    def exempt(check: str) -> set[str]:
        return {s.name for s in steps.values() if check in s.options.skip_graph_checks}

    if "reachability" not in skip:
        names = sorted(graph.step_names - exempt("reachability") - graph.forward_reachable)
        if names:
            message = f"Unreachable steps: {', '.join(names)}"
            hint = (
                f"no event the caller sends (the start event, a HumanResponseEvent) leads "
                f"to them in {workflow}; connect them, or skip the check with "
                "@step(skip_graph_checks=['reachability']) or "
                "Workflow(skip_graph_checks={'reachability'})"
            )
            found.append(
                GraphValidationError("reachability", message, hint, names, f"{message}: {hint}")
            )
    if "terminal_event" not in skip:
        dangling = sorted(
            (
                t
                for t in graph.event_types
                if not issubclass(t, StopEvent | InputRequiredEvent)
                and not any(isinstance(n, str) for n in graph.outgoing.get(t, ()))
            ),
            key=_type_order,
        )
        if dangling:
            makers = "; ".join(
                f"{', '.join(f'{workflow}.{s.name}' for s in steps.values() if t in s.returns)} "
                f"returns {t.__name__}"
                for t in dangling
            )
            hint = (
                "add a step that accepts it, or remove it from the return annotation (only a "
                "StopEvent or InputRequiredEvent goes to the caller)"
            )
            found.append(
                GraphValidationError(
                    "terminal_event",
                    f"Events produced but never consumed: {_names(dangling)}",
                    hint,
                    [],
                    f"The following events are produced but never consumed: {_names(dangling)} "
                    f"({makers}, but no step accepts it): {hint}",
                )
            )
    if "dead_end" not in skip:
        names = sorted(
            s.name for s in steps.values() if s.returns and s.name not in graph.reverse_reachable
        )
        names = [n for n in names if n not in exempt("dead_end")]
        if names:
            message = f"Dead-end steps: {', '.join(names)}"
            hint = (
                f"what they return never leads to a StopEvent or an InputRequiredEvent in "
                f"{workflow}, so a run through them could not finish; skip the check with "
                "@step(skip_graph_checks=['dead_end']) or "
                "Workflow(skip_graph_checks={'dead_end'}) if that is intended"
            )
            found.append(
                GraphValidationError("dead_end", message, hint, names, f"{message}: {hint}")
            )
    return found


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
                f"@catch_error handler '{s.name}' must accept StepFailedEvent as its event "
                f"parameter. {workflow}.{s.name} takes {_names(s.accepts)}: write "
                f"`async def {s.name}(self, ev: StepFailedEvent) -> ...`"
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
