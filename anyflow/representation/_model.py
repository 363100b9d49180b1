"""The incumbent's graph schema (``workflows.representation``) as plain data.

A ``WorkflowGraph`` here is what a drawing, a client or the inspector reads: ids,
labels and names, no classes.  ``anyflow.graph`` computes the graph of a
workflow, with the classes and resources themselves; this module only describes
it in the shape (field names, ``node_type`` tags, JSON) that programs written for
llama-index-workflows already read.  There are no pydantic models here, so the
base install can build and read these; the methods a pydantic user calls
(``model_dump``, ``model_dump_json``, ``model_validate``,
``model_validate_json``) are provided by ``_Data``.

Nodes are told apart by ``node_type``: ``"step"``, ``"event"``, ``"external"``,
``"resource"``, ``"resource_config"``; anything else reads as a
``WorkflowGenericNode`` (the incumbent's catch-all, used by agent drawings).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, TypeAlias, TypeVar, cast

import attrs

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

_D = TypeVar("_D", bound="_Data")

_str = attrs.validators.instance_of(str)
_opt_str = attrs.validators.optional(_str)
_opt_int = attrs.validators.optional(attrs.validators.instance_of(int))
_opt_dict = attrs.validators.optional(attrs.validators.instance_of(dict))
_names = attrs.validators.deep_iterable(_str, attrs.validators.instance_of(list))


def _str_list(value: Iterable[str]) -> list[str]:
    return list(value)


def _tag(kind: str) -> Any:
    """A ``node_type`` field fixed to ``kind`` (given or not, it must be ``kind``)."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value != kind:
            raise ValueError(
                f"{type(instance).__name__}.node_type is always {kind!r}, not {value!r}; "
                "use WorkflowGenericNode for a node of another type"
            )

    return attrs.field(default=kind, validator=check)


def _dump(value: Any, mode: str, exclude_none: bool) -> Any:
    if isinstance(value, _Data):
        return value.model_dump(mode=mode, exclude_none=exclude_none)
    if isinstance(value, list | tuple):
        return [_dump(v, mode, exclude_none) for v in value]
    if isinstance(value, dict):
        return copy.deepcopy(value)
    return value


class _Data:
    """pydantic's method names on an attrs class: what code written for the
    incumbent's pydantic models calls on these."""

    _nested: ClassVar[Mapping[str, Any]] = {}
    """Field name -> how to read one item of it from data (list fields)."""

    def model_dump(self, *, mode: str = "python", exclude_none: bool = False) -> dict[str, Any]:
        """The fields as a dict, nested nodes and edges as dicts too (the
        fields that are None left out of each, with ``exclude_none``)."""
        fields = attrs.fields(cast("type[attrs.AttrsInstance]", type(self)))
        values = ((f.name, getattr(self, f.name)) for f in fields)
        return {
            name: _dump(value, mode, exclude_none)
            for name, value in values
            if not (exclude_none and value is None)
        }

    def model_dump_json(self, *, indent: int | None = None, exclude_none: bool = False) -> str:
        """``model_dump()`` as JSON text."""
        return json.dumps(self.model_dump(mode="json", exclude_none=exclude_none), indent=indent)

    @classmethod
    def model_validate(cls: type[_D], obj: object) -> _D:
        """Read an instance back from ``model_dump()`` data (or return ``obj`` if it
        is one already).  Keys that are not fields are ignored, as pydantic does.

        :raises ValueError: naming the class and the fields that are missing or wrong.
        """
        if isinstance(obj, cls):
            return obj
        if not isinstance(obj, Mapping):
            raise ValueError(
                f"{cls.__name__}.model_validate takes a dict (as model_dump() gives) "
                f"or a {cls.__name__}, not {type(obj).__name__}"
            )
        fields = attrs.fields(cast("type[attrs.AttrsInstance]", cls))
        missing = [f.name for f in fields if f.default is attrs.NOTHING and f.name not in obj]
        if missing:
            raise ValueError(f"{cls.__name__} needs the field(s) {', '.join(missing)}")
        values = {f.name: obj[f.name] for f in fields if f.name in obj}
        for name, read in cls._nested.items():
            if isinstance(values.get(name), list | tuple):
                values[name] = [read(item) for item in values[name]]
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{cls.__name__} cannot be read from {dict(obj)!r}: {exc}") from exc

    @classmethod
    def model_validate_json(cls: type[_D], data: str | bytes) -> _D:
        """``model_validate`` of JSON text."""
        return cls.model_validate(json.loads(data))


@attrs.define(kw_only=True)
class WorkflowNodeBase(_Data):
    """What every node has: an ``id`` unique in its graph and a ``label`` to show."""

    id: str = attrs.field(validator=_str)
    label: str = attrs.field(validator=_str)

    def truncated_label(self, max_length: int) -> str:
        """The label cut to ``max_length`` characters, a ``*`` marking the cut."""
        if len(self.label) <= max_length:
            return self.label
        return self.label[: max_length - 1] + "*"


@attrs.define(kw_only=True)
class WorkflowStepNode(WorkflowNodeBase):
    """A ``@step``."""

    node_type: str = _tag("step")
    description: str | None = attrs.field(default=None, validator=_opt_str)
    """The step function's docstring."""


@attrs.define(kw_only=True)
class WorkflowEventNode(WorkflowNodeBase):
    """An event class that steps accept or return."""

    node_type: str = _tag("event")
    event_type: str = attrs.field(validator=_str)
    """The class name."""
    event_types: list[str] = attrs.field(converter=_str_list, validator=_names)
    """The class name, then its event base classes' names, nearest first
    (``Event`` itself left out): enough to ask "is it a kind of X?" without
    the class."""
    event_schema: dict[str, Any] | None = attrs.field(default=None, validator=_opt_dict)
    """The JSON Schema of the event's fields."""
    produced_by: list[str] = attrs.field(factory=list, converter=_str_list, validator=_names)
    """The steps whose return annotation names this class."""

    def is_subclass_of(self, *type_names: str) -> bool:
        """Whether the event class is, or derives from, a class of one of these names."""
        return any(name in self.event_types for name in type_names)


@attrs.define(kw_only=True)
class WorkflowExternalNode(WorkflowNodeBase):
    """Whoever outside the run answers its ``InputRequiredEvent``s."""

    node_type: str = _tag("external")


@attrs.define(kw_only=True)
class WorkflowResourceNode(WorkflowNodeBase):
    """A value a factory makes for steps (``Annotated[T, Resource(factory)]``)."""

    node_type: str = _tag("resource")
    type_name: str | None = attrs.field(default=None, validator=_opt_str)
    """The name of ``T``, the annotated type."""
    getter_name: str | None = attrs.field(default=None, validator=_opt_str)
    """The factory's qualified name."""
    source_file: str | None = attrs.field(default=None, validator=_opt_str)
    source_line: int | None = attrs.field(default=None, validator=_opt_int)
    description: str | None = attrs.field(default=None, validator=_opt_str)
    """The factory's docstring."""


@attrs.define(kw_only=True)
class WorkflowResourceConfigNode(WorkflowNodeBase):
    """A resource read from a configuration file."""

    node_type: str = _tag("resource_config")
    type_name: str | None = attrs.field(default=None, validator=_opt_str)
    config_file: str | None = attrs.field(default=None, validator=_opt_str)
    path_selector: str | None = attrs.field(default=None, validator=_opt_str)
    """Dotted path to the part of the file this resource reads."""
    config_schema: dict[str, Any] | None = attrs.field(default=None, validator=_opt_dict)
    config_value: dict[str, Any] | None = attrs.field(default=None, validator=_opt_dict)
    description: str | None = attrs.field(default=None, validator=_opt_str)


@attrs.define(kw_only=True)
class WorkflowGenericNode(WorkflowNodeBase):
    """A node of any other ``node_type`` (agents, tools...), optionally typed like
    an event node so that ``is_subclass_of`` works on it."""

    node_type: str = attrs.field(validator=_str)
    event_type: str | None = attrs.field(default=None, validator=_opt_str)
    event_types: list[str] | None = attrs.field(
        default=None,
        converter=attrs.converters.optional(_str_list),
        validator=attrs.validators.optional(_names),
    )

    def is_subclass_of(self, *type_names: str) -> bool:
        """Whether ``event_types`` names one of these (False without ``event_types``)."""
        return any(name in (self.event_types or ()) for name in type_names)


WorkflowGraphNode: TypeAlias = (
    WorkflowStepNode
    | WorkflowEventNode
    | WorkflowExternalNode
    | WorkflowResourceNode
    | WorkflowResourceConfigNode
    | WorkflowGenericNode
)

_NODE_TYPES: dict[str, type[WorkflowGraphNode]] = {
    "step": WorkflowStepNode,
    "event": WorkflowEventNode,
    "external": WorkflowExternalNode,
    "resource": WorkflowResourceNode,
    "resource_config": WorkflowResourceConfigNode,
}


def _read_node(data: object) -> WorkflowGraphNode:
    """A node from its data, of the class its ``node_type`` names."""
    if isinstance(data, WorkflowNodeBase):
        return data  # type: ignore[return-value]
    if not isinstance(data, Mapping) or not isinstance(data.get("node_type"), str):
        raise ValueError(f"a graph node is a dict with a 'node_type' string, not {data!r}")
    cls = _NODE_TYPES.get(data["node_type"], WorkflowGenericNode)
    return cls.model_validate(data)


@attrs.define(kw_only=True)
class WorkflowGraphEdge(_Data):
    """A directed edge between two node ids."""

    source: str = attrs.field(validator=_str)
    target: str = attrs.field(validator=_str)
    label: str | None = attrs.field(default=None, validator=_opt_str)
    """The parameter name on a step -> resource edge."""


def _node_list(value: Iterable[WorkflowGraphNode]) -> list[WorkflowGraphNode]:
    return list(value)


def _edge_list(value: Iterable[WorkflowGraphEdge]) -> list[WorkflowGraphEdge]:
    return list(value)


@attrs.define(kw_only=True)
class WorkflowGraph(_Data):
    """A workflow's nodes and edges, as ``get_workflow_representation`` gives them."""

    _nested: ClassVar[Mapping[str, Any]] = {
        "nodes": _read_node,
        "edges": WorkflowGraphEdge.model_validate,
    }

    name: str = attrs.field(default="", validator=_str)
    """The workflow class's name."""
    nodes: list[WorkflowGraphNode] = attrs.field(converter=_node_list)
    edges: list[WorkflowGraphEdge] = attrs.field(converter=_edge_list)
    description: str | None = attrs.field(default=None, validator=_opt_str)
    """The workflow class's docstring."""

    def filter_by_node_type(self, *node_types: str) -> WorkflowGraph:
        """This graph without the nodes of these ``node_type``s, their edges
        bridged: ``a -> removed -> b`` becomes ``a -> b``.

        A bridged edge is labelled with the first removed node it went through
        (``step1 -> step2`` labelled ``"MyEvent"`` once events are removed); a
        kept edge keeps its label.  Each (source, target) pair appears once.
        """
        removed = {n.id for n in self.nodes if n.node_type in node_types}
        kept = [n for n in self.nodes if n.id not in removed]
        labels = {n.id: n.label for n in self.nodes}
        outgoing: dict[str, list[WorkflowGraphEdge]] = {}
        for edge in self.edges:
            outgoing.setdefault(edge.source, []).append(edge)

        edges: list[WorkflowGraphEdge] = []
        seen: set[tuple[str, str]] = set()
        for node in kept:
            # Depth-first through removed nodes; `via` is the first one passed.
            stack: list[tuple[WorkflowGraphEdge, str | None]] = [
                (e, None) for e in reversed(outgoing.get(node.id, []))
            ]
            passed: set[str] = set()
            while stack:
                edge, via = stack.pop()
                if edge.target in removed:
                    if edge.target in passed:
                        continue
                    passed.add(edge.target)
                    through = via if via is not None else labels[edge.target]
                    stack.extend((e, through) for e in reversed(outgoing.get(edge.target, [])))
                elif (node.id, edge.target) not in seen and edge.target in labels:
                    seen.add((node.id, edge.target))
                    label = via if via is not None else edge.label
                    edges.append(WorkflowGraphEdge(source=node.id, target=edge.target, label=label))
        return WorkflowGraph(name=self.name, nodes=kept, edges=edges, description=self.description)
