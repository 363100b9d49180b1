"""``get_workflow_representation``: the incumbent's entry point, a view of
``anyflow.graph.workflow_graph``, which is the one place a workflow's graph is
computed."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..workflow import Workflow
    from ._model import WorkflowGraph

__all__ = ["get_workflow_representation"]


def get_workflow_representation(workflow: Workflow | type[Workflow]) -> WorkflowGraph:
    """The graph of a workflow (class or instance) in the incumbent's schema.

    The same graph as ``anyflow.graph.workflow_graph(workflow)``, as data: node
    ids, labels and class names, ready for ``model_dump()`` or a drawing.
    """
    # anyflow.graph builds its JSON from this package's types: imported here,
    # not at the top, so that either package may be imported first.
    from ..graph import workflow_graph

    return workflow_graph(workflow).to_representation()
