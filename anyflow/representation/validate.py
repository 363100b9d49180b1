"""The graph checks under llama-index-workflows' names (``workflows.representation.validate``).

``validate_graph(steps=..., start_event_class=..., skip_checks=...)`` lists every
failed check (reachability, terminal events, dead ends) as a
``GraphValidationError`` record, and ``build_step_graph`` gives the graph they
walk.  ``steps`` maps step names to ``StepConfig`` (``fn._step_config`` of the
functions ``wf._get_steps()`` gives) or to anyflow's own readings
(``Workflow.steps()``).  These are the checks ``Workflow.validate()`` and the
first ``run()`` make (``anyflow.validation``), not a second implementation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..decorators import StepConfig, WorkflowGraphCheck
from ..validation import GraphNode, GraphValidationError, StepGraph, graph_problems
from ..validation import build_step_graph as _build_step_graph

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = [
    "GraphNode",
    "GraphValidationError",
    "StepGraph",
    "build_step_graph",
    "validate_graph",
]


def _infos(steps: Mapping[str, Any]) -> dict[str, Any]:
    """anyflow's reading of each step: ``StepConfig.info``, or the value itself
    when it is one already (``Workflow.steps()``)."""
    out: dict[str, Any] = {}
    for name, step in steps.items():
        info = step.info if isinstance(step, StepConfig) else step
        if not hasattr(info, "accepts") or not hasattr(info, "options"):
            raise TypeError(
                f"step {name!r}: expected a StepConfig (fn._step_config of a function "
                f"wf._get_steps() gives) or a value of Workflow.steps(), not {step!r}"
            )
        out[name] = info
    return out


def build_step_graph(
    steps: Mapping[str, Any],
    start_event_class: type,
    catch_error_steps: Iterable[str] | None = None,
) -> StepGraph:
    """The graph of ``steps`` (name -> ``StepConfig``) for runs that begin with
    ``start_event_class``: adjacency lists from events to the steps that take
    them and from steps to the events they return, and what is reachable from
    the caller's events and can reach an output."""
    return _build_step_graph(_infos(steps), start_event_class, catch_error_steps or ())


def validate_graph(
    steps: Mapping[str, Any],
    start_event_class: type,
    skip_checks: Iterable[WorkflowGraphCheck] | None = None,
    catch_error_steps: Iterable[str] | None = None,
) -> list[GraphValidationError]:
    """Every failed graph check of ``steps`` (name -> ``StepConfig``), empty when
    the graph is sound; ``skip_checks`` names checks not to run."""
    return graph_problems(
        _infos(steps),
        start_event_class,
        skip_checks or (),
        catch_error_steps=catch_error_steps or (),
    )
