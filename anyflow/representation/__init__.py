"""A workflow's graph in llama-index-workflows' schema (``workflows.representation``).

``get_workflow_representation(MyWorkflow)`` gives a ``WorkflowGraph`` of step,
event, external and resource nodes and the edges between them, with
``model_dump()`` / ``model_validate()`` for JSON and ``filter_by_node_type`` to
simplify it.  It is a view of ``anyflow.graph.workflow_graph``, which also
draws (``anyflow.graph.mermaid``) and serves the same graph; the types here are
plain attrs classes, so pydantic is not needed.  See docs/reference/graph.md.
"""

from __future__ import annotations

from ._build import get_workflow_representation as get_workflow_representation
from ._model import WorkflowEventNode as WorkflowEventNode
from ._model import WorkflowExternalNode as WorkflowExternalNode
from ._model import WorkflowGenericNode as WorkflowGenericNode
from ._model import WorkflowGraph as WorkflowGraph
from ._model import WorkflowGraphEdge as WorkflowGraphEdge
from ._model import WorkflowGraphNode as WorkflowGraphNode
from ._model import WorkflowNodeBase as WorkflowNodeBase
from ._model import WorkflowResourceConfigNode as WorkflowResourceConfigNode
from ._model import WorkflowResourceNode as WorkflowResourceNode
from ._model import WorkflowStepNode as WorkflowStepNode

__all__ = [
    "WorkflowEventNode",
    "WorkflowExternalNode",
    "WorkflowGenericNode",
    "WorkflowGraph",
    "WorkflowGraphEdge",
    "WorkflowGraphNode",
    "WorkflowNodeBase",
    "WorkflowResourceConfigNode",
    "WorkflowResourceNode",
    "WorkflowStepNode",
    "get_workflow_representation",
]
