"""The resource nodes of a workflow's graph: what a factory or a config file
gives its steps, and what those factories need in turn.

A resource is identified as the runtime identifies it: a ``Resource`` by its
factory *and* the parameter it fills, a ``ResourceConfig`` by its file and
selector and the parameter.  A factory's own resource parameters are nodes too,
with an edge from the factory's node labelled with the parameter name, as a
step's are.
"""

from __future__ import annotations

import hashlib
import inspect
import re
import typing
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import attrs

from ..errors import ResourceError
from ..representation import types as rep
from ..resources import Resource, ResourceConfig
from ._names import own_doc, unique

if TYPE_CHECKING:
    from ..resources import ResourceDescriptor

__all__ = ["ResourceConfigNode", "ResourceGraph", "ResourceNode", "resource_types"]


@attrs.frozen
class ResourceNode:
    """A value injected into steps, made by a factory (``anyflow.Resource``)."""

    node_type: ClassVar[Literal["resource"]] = "resource"
    id: str
    """``resource_`` and a hash of the factory's and the parameter's names:
    stable from one process to the next."""
    label: str
    getter_name: str
    """The factory's qualified name."""
    cache: bool
    """True: one value per run; False: one per step call."""
    description: str | None = None
    """The factory's own docstring."""
    source_file: str | None = None
    source_line: int | None = None
    type_name: str | None = None
    """The name of the annotated type ``T`` in ``Annotated[T, Resource(...)]``."""

    def to_representation(self) -> rep.WorkflowResourceNode:
        return rep.WorkflowResourceNode(
            id=self.id,
            label=self.label,
            type_name=self.type_name,
            getter_name=self.getter_name,
            source_file=self.source_file,
            source_line=self.source_line,
            description=self.description,
        )

    def to_json(self) -> dict[str, Any]:
        return self.to_representation().model_dump(mode="json")


@attrs.frozen
class ResourceConfigNode:
    """A value read from a JSON file (``anyflow.ResourceConfig``)."""

    node_type: ClassVar[Literal["resource_config"]] = "resource_config"
    id: str
    """``resource_config_`` and a hash of the file, the selector and the parameter."""
    label: str
    """The config's own label, else its type's name, else the file."""
    config_file: str
    """The file's absolute path, as the working directory gave it when the graph
    was made (``ResourceConfig.path``), as in llama-index-workflows."""
    path_selector: str | None
    cache: bool
    type_name: str | None = None
    """The name of the class the config becomes."""
    description: str | None = None
    config_schema: dict[str, Any] | None = attrs.field(default=None, hash=False)
    """The JSON Schema of that class, when it is a pydantic model."""
    config_value: dict[str, Any] | None = attrs.field(default=None, hash=False)
    """What the file holds at the selector when the graph was made (None if it
    could not be read then)."""

    def to_representation(self) -> rep.WorkflowResourceConfigNode:
        return rep.WorkflowResourceConfigNode(
            id=self.id,
            label=self.label,
            type_name=self.type_name,
            config_file=self.config_file,
            path_selector=self.path_selector,
            config_schema=self.config_schema,
            config_value=self.config_value,
            description=self.description,
        )

    def to_json(self) -> dict[str, Any]:
        return self.to_representation().model_dump(mode="json")


def _type_name(annotation: object) -> str | None:
    """``T``'s name for ``Annotated[T, Resource(...)]`` (or for ``T``)."""
    if isinstance(annotation, str):
        # Not resolvable here (it names a class local to a function): its text.
        text = annotation.strip()
        if text.startswith(("Annotated[", "typing.Annotated[")):
            text = text.split("[", 1)[1]
        text = re.split(r"[\[,\]]", text, maxsplit=1)[0].strip()
        return text.rsplit(".", 1)[-1] or None
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if annotation is inspect.Parameter.empty or annotation is None:
        return None
    name = getattr(annotation, "__name__", None)
    return name if isinstance(name, str) else str(annotation)


def resource_types(function: object) -> dict[str, str | None]:
    """The annotated type's name of each parameter of a step or factory.

    Its annotations were resolved when the step was read; this reads them again
    only for the names a drawing shows, so a function that is not at hand has
    no type names, and annotations that name classes local to a function are
    read as text.
    """
    if not callable(function):
        return {}
    try:
        hints: dict[str, Any] = typing.get_type_hints(function, include_extras=True)
    except (NameError, TypeError, AttributeError):
        try:
            params = inspect.signature(function).parameters
        except (TypeError, ValueError):  # no signature to read
            return {}
        hints = {n: p.annotation for n, p in params.items()}
    return {name: _type_name(hint) for name, hint in hints.items()}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _config_value(config: ResourceConfig[Any]) -> dict[str, Any] | None:
    """The file's data at the selector, as plain JSON, or None if unreadable now."""
    try:
        value = attrs.evolve(config, cls_factory=None).load()
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _config_schema(model: object) -> dict[str, Any] | None:
    schema = getattr(model, "model_json_schema", None)  # a pydantic model class
    if not (isinstance(model, type) and callable(schema)):
        return None
    result = schema()
    return result if isinstance(result, dict) else None


class ResourceGraph:
    """The resource nodes of one graph, each made once, and the edges from a
    factory to the resources it needs."""

    def __init__(self, taken: set[str]) -> None:
        self._taken = taken
        self._nodes: dict[tuple[object, str], ResourceNode | ResourceConfigNode] = {}
        self.nodes: list[ResourceNode | ResourceConfigNode] = []
        """In order of first use."""
        self.edges: list[tuple[str, str, str]] = []
        """(factory's node id, needed resource's node id, parameter name)."""

    def node(
        self, param: str, resource: ResourceDescriptor, type_name: str | None
    ) -> ResourceNode | ResourceConfigNode:
        """The node of ``resource`` filling parameter ``param`` (made, with the
        nodes of what it needs, on first use)."""
        if isinstance(resource, ResourceConfig):
            key: tuple[object, str] = (("config", resource.name), param)
        else:
            key = (id(resource.factory), param)
        found = self._nodes.get(key)
        if found is not None:
            return found
        if isinstance(resource, ResourceConfig):
            made: ResourceNode | ResourceConfigNode = self._config(param, resource)
            self._add(key, made)
            return made
        made = self._resource(param, resource, type_name)
        self._add(key, made)
        try:
            needs = resource.dependencies()
        except ResourceError:  # Workflow.validate() says what; the drawing goes on
            needs = ()
        types = resource_types(resource.factory) if needs else {}
        for dep_param, dep in needs:
            dep_node = self.node(dep_param, dep, types.get(dep_param))
            self.edges.append((made.id, dep_node.id, dep_param))
        return made

    def _add(self, key: tuple[object, str], node: ResourceNode | ResourceConfigNode) -> None:
        self._nodes[key] = node
        self.nodes.append(node)

    def _resource(self, param: str, resource: Resource[Any], type_name: str | None) -> ResourceNode:
        factory = resource.factory
        module = getattr(factory, "__module__", None) or ""
        getter = getattr(factory, "__qualname__", None) or repr(factory)
        try:
            source_file = inspect.getsourcefile(factory)
        except TypeError:  # a builtin or C callable
            source_file = None
        code = getattr(factory, "__code__", None)
        return ResourceNode(
            id=unique(f"resource_{_digest(f'{module}:{getter}:{param}')}", self._taken),
            label=getattr(factory, "__name__", None) or getter,
            getter_name=getter,
            cache=resource.cache,
            description=own_doc(factory),
            source_file=source_file,
            source_line=getattr(code, "co_firstlineno", None),
            type_name=type_name,
        )

    def _config(self, param: str, config: ResourceConfig[Any]) -> ResourceConfigNode:
        model = config.cls_factory
        type_name = _type_name(model)
        return ResourceConfigNode(
            id=unique(f"resource_config_{_digest(f'{config.name}:{param}')}", self._taken),
            label=config.label or type_name or str(config.config_file),
            config_file=config.path,
            path_selector=config.path_selector,
            cache=config.cache,
            type_name=type_name,
            description=config.description,
            config_schema=_config_schema(model),
            config_value=_config_value(config),
        )
