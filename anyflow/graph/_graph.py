"""The graph of a workflow, read from its step annotations without running it.

Theory of operation
-------------------

A workflow's shape is already declared in its steps' signatures: the event
types a step accepts and the ones it returns.  ``workflow_graph`` turns those
declarations into a bipartite graph of steps and events, plus the parties a run
talks to outside itself, so that drawings (``mermaid``, a future ``anyflow
draw``), the HTTP server and the inspector all describe a workflow the same way.

Nodes (``Node``):

* ``StepNode``: one per ``@step`` method; its id is the step's name.
* ``EventNode``: one per event class named in an annotation; its id is the class
  name (the module-qualified name if that would clash with a step or another
  event class of the same name).
* ``ExternalNode``: at most one, ``"external_step"``, standing for the human (or
  system) outside the run, present when a step returns an ``InputRequiredEvent``
  or accepts a ``HumanResponseEvent``.
* ``ResourceNode``: one per resource a step (or a resource's factory) asks for,
  identified as the runtime identifies it, by factory *and* parameter name
  (``anyflow.resources``); ``ResourceConfigNode`` likewise for a
  ``ResourceConfig``, by file, selector and parameter (see ``_resources``).

Edges (``Edge``), each a fact the runtime acts on:

1. step -> event: the step's return annotation names the event class.
2. event -> step: the runtime would deliver an event of that class to the step,
   i.e. the class is a subclass of one the step accepts.  Routing is by
   subclass, so a step accepting ``Base`` gets an edge from every ``Base``
   subclass in the graph, unless it said
   ``@step(accept_event_subclasses=False)`` (then only from ``Base``).  A
   ``StopEvent`` ends the run and is never delivered, so it has no outgoing
   edges.
3. event -> external: the event is an ``InputRequiredEvent``, published to the
   caller.
4. external -> event: the event is a ``HumanResponseEvent`` a step accepts, sent
   in by the caller.
5. step -> resource, labelled with the parameter the resource fills.
6. resource -> resource: the first one's factory takes the second, labelled
   with that parameter of the factory.

What the graph cannot see: events a step only waits for with
``ctx.wait_for_event`` or sends with ``ctx.send_event``, since neither is in a
signature.  Annotate them on a step to make them visible.

Every node, edge and graph has a ``to_representation()``: the same thing in the
incumbent's schema (``anyflow.representation``, plain data: names, not
classes), which is what ``get_workflow_representation`` returns.  Its
``model_dump`` is the JSON form (``to_json``) that the incumbent's clients and
inspector read (``workflows.representation.WorkflowGraph``), so the server can
hand it to them unchanged.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias

import attrs

from ..events import Event, HumanResponseEvent, InputRequiredEvent, StopEvent
from ..representation import types as rep
from ..serialization import event_schema
from ._names import own_doc, unique
from ._resources import ResourceConfigNode, ResourceGraph, ResourceNode, resource_types

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..workflow import Workflow
    from ._run import RunGraph

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

EXTERNAL_ID = "external_step"
"""The id of the external node (the incumbent's, which its clients look for)."""


@attrs.frozen
class StepNode:
    """A ``@step`` method."""

    node_type: ClassVar[Literal["step"]] = "step"
    id: str
    """The step's name, as in ``Workflow.steps()``."""
    label: str
    description: str | None = None
    """The step method's own docstring."""

    def to_representation(self) -> rep.WorkflowStepNode:
        return rep.WorkflowStepNode(id=self.id, label=self.label, description=self.description)

    def to_json(self) -> dict[str, Any]:
        return self.to_representation().model_dump(mode="json")


@attrs.frozen
class EventNode:
    """An event class that steps accept or return."""

    node_type: ClassVar[Literal["event"]] = "event"
    id: str
    label: str
    """The class name."""
    event_class: type[Event]
    """The class itself, so that a reader can build its schema or instances
    without looking its name up again (names may clash; classes do not)."""
    event_types: tuple[str, ...]
    """The class name, then the names of the public event classes it derives
    from, nearest first, without ``Event`` itself: what a client matches on to
    ask "is this a kind of ``StopEvent``?" without the class at hand."""
    produced_by: tuple[str, ...] = ()
    """Names of the steps whose return annotation names this exact class."""

    def is_a(self, *type_names: str) -> bool:
        """Whether the class is, or derives from, a class of one of these names."""
        return any(name in self.event_types for name in type_names)

    def to_representation(self) -> rep.WorkflowEventNode:
        return rep.WorkflowEventNode(
            id=self.id,
            label=self.label,
            event_type=self.event_class.__name__,
            event_types=list(self.event_types),
            event_schema=event_schema(self.event_class),
            produced_by=list(self.produced_by),
        )

    def to_json(self) -> dict[str, Any]:
        return self.to_representation().model_dump(mode="json")


@attrs.frozen
class ExternalNode:
    """The world outside the run: whoever answers ``InputRequiredEvent``s."""

    node_type: ClassVar[Literal["external"]] = "external"
    id: str
    label: str

    def to_representation(self) -> rep.WorkflowExternalNode:
        return rep.WorkflowExternalNode(id=self.id, label=self.label)

    def to_json(self) -> dict[str, Any]:
        return self.to_representation().model_dump(mode="json")


Node: TypeAlias = StepNode | EventNode | ExternalNode | ResourceNode | ResourceConfigNode


@attrs.frozen
class Edge:
    """A directed edge; see the module docstring for what each kind means."""

    source: str
    target: str
    label: str | None = None
    """The parameter name, on step -> resource edges."""

    def to_representation(self) -> rep.WorkflowGraphEdge:
        return rep.WorkflowGraphEdge(source=self.source, target=self.target, label=self.label)

    def to_json(self) -> dict[str, Any]:
        return self.to_representation().model_dump(mode="json")


@attrs.frozen
class WorkflowGraph:
    """A workflow's steps, events, outside parties and resources, and how they connect.

    Node and edge order is deterministic: steps in definition order, each
    followed by the nodes it introduces, so drawings and JSON diff cleanly.
    """

    name: str
    """The workflow class's name."""
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    description: str | None = None
    """The workflow class's own docstring."""

    def node(self, node_id: str) -> Node:
        """The node with id ``node_id``.

        :raises KeyError: naming the ids there are.
        """
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(
            f"{self.name} has no node {node_id!r}; its nodes are: "
            f"{', '.join(n.id for n in self.nodes)}"
        )

    def to_representation(self) -> rep.WorkflowGraph:
        """This graph in the incumbent's schema (``anyflow.representation``)."""
        return rep.WorkflowGraph(
            name=self.name,
            nodes=[node.to_representation() for node in self.nodes],
            edges=[edge.to_representation() for edge in self.edges],
            description=self.description,
        )

    def to_json(self) -> dict[str, Any]:
        """The graph as JSON-safe data, in the incumbent's ``WorkflowGraph`` shape."""
        return self.to_representation().model_dump(mode="json")


def _event_types(cls: type[Event]) -> tuple[str, ...]:
    bases = [
        c.__name__
        for c in cls.__mro__[1:]
        if issubclass(c, Event) and c is not Event and not c.__name__.startswith("_")
    ]
    return (cls.__name__, *bases)


def workflow_graph(workflow: Workflow | type[Workflow]) -> WorkflowGraph:
    """The graph of a workflow class (or of an instance's class).

    Built from the step annotations alone: the workflow is not instantiated or
    validated, so an invalid workflow can still be drawn to see what is wrong.
    """
    cls = workflow if isinstance(workflow, type) else type(workflow)
    steps = cls.steps()
    taken = set(steps)  # step ids are step names, whatever else is called so
    nodes: list[Node] = []

    # Every event class in the graph, in order of first mention; a class name
    # that two classes share, or that a step has, is qualified by module.
    classes = list(
        dict.fromkeys(t for info in steps.values() for t in (*info.accepts, *info.returns))
    )
    ambiguous = {
        name
        for name in {t.__name__ for t in classes}
        if name in steps or sum(t.__name__ == name for t in classes) > 1
    }
    producers: dict[type[Event], list[str]] = {}
    for info in steps.values():
        for t in info.returns:
            producers.setdefault(t, []).append(info.name)

    events: dict[type[Event], EventNode] = {}
    resources = ResourceGraph(taken)
    uses: list[tuple[str, str, str]] = []  # (step, resource node id, parameter)
    external: ExternalNode | None = None
    for info in steps.values():
        nodes.append(StepNode(info.name, info.name, own_doc(getattr(cls, info.name, None))))
        for t in (*info.accepts, *info.returns):
            if t not in events:
                name = t.__name__
                preferred = f"{t.__module__}.{t.__qualname__}" if name in ambiguous else name
                events[t] = EventNode(
                    id=unique(preferred, taken),
                    label=name,
                    event_class=t,
                    event_types=_event_types(t),
                    produced_by=tuple(producers.get(t, ())),
                )
                nodes.append(events[t])
            if external is None and issubclass(t, InputRequiredEvent | HumanResponseEvent):
                external = ExternalNode(id=unique(EXTERNAL_ID, taken), label=EXTERNAL_ID)
                nodes.append(external)
        types = resource_types(getattr(cls, info.name, None)) if info.resources else {}
        for param, resource in info.resources:
            made = len(resources.nodes)
            node_id = resources.node(param, resource, types.get(param)).id
            nodes.extend(resources.nodes[made:])
            uses.append((info.name, node_id, param))

    edges: list[Edge] = []
    for info in steps.values():
        edges.extend(Edge(info.name, events[t].id) for t in info.returns)
        edges.extend(
            Edge(node.id, info.name)
            for t, node in events.items()
            if info.takes(t) and not issubclass(t, StopEvent)
        )
        edges.extend(Edge(s, r, label=p) for s, r, p in uses if s == info.name)
    edges.extend(Edge(source, target, label=param) for source, target, param in resources.edges)
    if external is not None:
        for t, node in events.items():
            if issubclass(t, InputRequiredEvent):
                edges.append(Edge(node.id, external.id))
            elif issubclass(t, HumanResponseEvent) and any(
                info.takes(t) for info in steps.values()
            ):
                edges.append(Edge(external.id, node.id))

    return WorkflowGraph(
        name=cls.__name__, nodes=tuple(nodes), edges=tuple(edges), description=own_doc(cls)
    )


_SHAPES: dict[str, Callable[[str], str]] = {
    "step": lambda text: f'["{text}"]',
    "event": lambda text: f'(["{text}"])',
    "external": lambda text: f'{{{{"{text}"}}}}',
    "resource": lambda text: f'[("{text}")]',
    "resource_config": lambda text: f'[("{text}")]',
}
"""Mermaid node shapes: steps are boxes, events pills, the outside a hexagon,
resources (and configs, dashed) cylinders."""

_STYLES = {
    "step": "fill:#e3f2fd,stroke:#1565c0",
    "event": "fill:#f1f8e9,stroke:#558b2f",
    "external": "fill:#fff3e0,stroke:#ef6c00",
    "resource": "fill:#f3e5f5,stroke:#6a1b9a",
    "resource_config": "fill:#f3e5f5,stroke:#6a1b9a,stroke-dasharray:4 2",
}


_NOT_WORD = re.compile(r"\W")


def _escape(text: str) -> str:
    """Text safe inside a quoted Mermaid label (Mermaid reads labels as HTML)."""
    return (
        text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    )


def mermaid(graph: WorkflowGraph | RunGraph) -> str:
    """The graph as Mermaid flowchart text (paste it in a Markdown ``mermaid`` block).

    Mermaid ids are the node ids prefixed with the node kind (``step_answer``,
    ``event_Joke``), which keeps them readable and clear of Mermaid keywords such
    as ``end``.

    Given a ``RunGraph``, the drawing is of that run: each step's label says
    when it first ran and how its attempts went, each event's how many came;
    the step that failed the run is red, steps and events the run never
    reached are grey.
    """
    if isinstance(graph, WorkflowGraph):
        return _mermaid(graph, {}, {}, {}, [])
    from ._run import mermaid_overlay

    return _mermaid(graph.graph, *mermaid_overlay(graph))


def _mermaid(
    graph: WorkflowGraph,
    labels: dict[str, list[str]],
    kinds: dict[str, str],
    styles: dict[str, str],
    comments: list[str],
) -> str:
    """The drawing, with ``labels`` (lines, already escaped) and style classes
    (``kinds``, defined in ``styles``) in place of a node's own."""
    ids: dict[str, str] = {}
    taken: set[str] = set()
    for node in graph.nodes:
        readable = _NOT_WORD.sub("_", node.id)
        if not readable.startswith(node.node_type):
            readable = f"{node.node_type}_{readable}"
        ids[node.id] = unique(readable, taken, sep="_")
    lines = ["flowchart TD", *(f"    %% {c}" for c in comments)]
    for node in graph.nodes:
        text = "<br/>".join(labels.get(node.id, [_escape(node.label)]))
        lines.append(f"    {ids[node.id]}{_SHAPES[node.node_type](text)}")
    for edge in graph.edges:
        arrow = "-->" if edge.label is None else f'-->|"{_escape(edge.label)}"|'
        lines.append(f"    {ids[edge.source]} {arrow} {ids[edge.target]}")
    for kind, style in {**_STYLES, **styles}.items():
        members = [ids[n.id] for n in graph.nodes if kinds.get(n.id, n.node_type) == kind]
        if members:
            lines.append(f"    classDef {kind} {style}")
            lines.append(f"    class {','.join(members)} {kind}")
    return "\n".join(lines) + "\n"
