"""The graph of a workflow: its steps, the events between them, and what lies outside.

One data model, read from step annotations, for every consumer: ``mermaid`` text
for documentation (and the ``anyflow draw`` command), and the JSON that the HTTP
server and the inspector read (``WorkflowGraph.to_json``).  See
``anyflow.graph._graph`` for what each node and edge means.

    >>> from anyflow.graph import workflow_graph, mermaid
    >>> print(mermaid(workflow_graph(MyWorkflow)))  # doctest: +SKIP

A recorded run laid over the graph (``RunGraph``: which steps ran, how often,
in what order, where it failed) is drawn the same way:

    >>> run = await recorded_run_graph(store, "run-1", MyWorkflow)  # doctest: +SKIP
    >>> print(mermaid(run))  # doctest: +SKIP
"""

from __future__ import annotations

from ._graph import Edge as Edge
from ._graph import EventNode as EventNode
from ._graph import ExternalNode as ExternalNode
from ._graph import Node as Node
from ._graph import StepNode as StepNode
from ._graph import WorkflowGraph as WorkflowGraph
from ._graph import mermaid as mermaid
from ._graph import workflow_graph as workflow_graph
from ._resources import ResourceConfigNode as ResourceConfigNode
from ._resources import ResourceNode as ResourceNode
from ._run import RunGraph as RunGraph
from ._run import StepActivity as StepActivity
from ._run import recorded_run_graph as recorded_run_graph
from ._run import run_graph as run_graph
from ._run import run_summary as run_summary
from ._run import step_summary as step_summary

__all__ = [
    "Edge",
    "EventNode",
    "ExternalNode",
    "Node",
    "ResourceConfigNode",
    "ResourceNode",
    "RunGraph",
    "StepActivity",
    "StepNode",
    "WorkflowGraph",
    "mermaid",
    "recorded_run_graph",
    "run_graph",
    "run_summary",
    "step_summary",
    "workflow_graph",
]
