"""The event graph's structural checks, public for the layers above the engine.

``Workflow.validate()`` and a workflow's first ``run()`` make these checks
(``anyflow._validation`` holds them); ``anyflow.representation.validate`` offers
them under llama-index-workflows' names and argument shapes.

* ``build_step_graph(steps, start_event_class)``: a ``StepGraph`` of event and
  step nodes, with what the caller's events reach and what reaches an output;
* ``graph_problems(steps, start_event_class, skip)``: every failed check
  (reachability, terminal events, dead ends) as a ``GraphValidationError`` record.

``steps`` is ``Workflow.steps()``.
"""

from __future__ import annotations

from ._validation import GraphNode as GraphNode
from ._validation import GraphValidationError as GraphValidationError
from ._validation import StepGraph as StepGraph
from ._validation import build_step_graph as build_step_graph
from ._validation import graph_problems as graph_problems

__all__ = [
    "GraphNode",
    "GraphValidationError",
    "StepGraph",
    "build_step_graph",
    "graph_problems",
]
