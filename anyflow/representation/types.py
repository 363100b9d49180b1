"""The node, edge and graph types of a workflow's representation (the
incumbent's ``workflows.representation.types``)."""

from __future__ import annotations

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
]
