"""The graph of a workflow: its steps, the events between them, and what lies outside.

One data model, read from step annotations, for every consumer: ``mermaid`` text
for documentation (and the ``anyflow draw`` command), and the JSON that the HTTP
server and the inspector read (``WorkflowGraph.to_json``).  See
``anyflow.graph._graph`` for what each node and edge means.

    >>> from anyflow.graph import workflow_graph, mermaid
    >>> print(mermaid(workflow_graph(MyWorkflow)))  # doctest: +SKIP
"""

from __future__ import annotations

from ._graph import Edge as Edge
from ._graph import EventNode as EventNode
from ._graph import ExternalNode as ExternalNode
from ._graph import Node as Node
from ._graph import ResourceNode as ResourceNode
from ._graph import StepNode as StepNode
from ._graph import WorkflowGraph as WorkflowGraph
from ._graph import mermaid as mermaid
from ._graph import workflow_graph as workflow_graph

__all__ = [
    "Edge",
    "EventNode",
    "ExternalNode",
    "Node",
    "ResourceNode",
    "StepNode",
    "WorkflowGraph",
    "mermaid",
    "workflow_graph",
]
