"""Resources: values a step asks for by annotation, made by a factory.

    async def query(self, ev: Query, db: Annotated[Database, Resource(connect)]) -> Answer

How a value is made from ``factory()``:

* a plain value is injected as it is;
* an awaitable (``factory`` is an ``async def``) is awaited and its value injected;
* an async context manager (an ``@asynccontextmanager`` function, or a class
  such as ``httpx.AsyncClient``) is entered, the value of its ``__aenter__`` is
  injected, and it is exited later: at the end of the run if it is cached, right
  after the step call if it is not.  An awaited value is not entered, so a factory
  that wants anyflow to close what it makes returns a context manager.

``cache=True`` (the default) makes one value per run, shared by every step and
worker that asks for the same resource; a resource is identified by its factory
*and* the parameter it fills, so two parameters with one factory never share a
value by accident, while one parameter name with one factory in several steps
does.  ``cache=False`` makes a value for each step call, as if the step's body
were wrapped in ``async with factory() as value:`` (except that a resource cannot
swallow the step's exception).

A factory may take parameters of its own, annotated the same way
(``db: Annotated[Database, Resource(connect)]`` or a ``ResourceConfig``): they
are made first, with the same caching rules, and passed by name.  Any other
parameter needs a default.  A cycle of factories, or a parameter anyflow cannot
fill, is reported by ``Workflow.validate()`` and fails the step that needs it.

A factory that raises fails the step attempt with ``ResourceError`` naming the
step and the parameter (the factory's exception is its ``__cause__``), so the
step's retry policy applies.  Failures are not cached: the next attempt calls
the factory again.

A ``ResourceManager`` given to the workflow (``Workflow(resource_manager=...)``)
holds values by resource name (the factory's ``__qualname__``, or a config's
file and selector): a value set there is used by every run instead of calling
the factory, and is never closed by a run.

This module holds the markers, how a factory's own resource parameters are
read, and the caching rules (``RunResources``, ``ResourceManager``). Making one
value and closing what was entered is ``_resource_values``; what
``Workflow.validate()`` reports about resources is ``_resource_checks``.
"""

from __future__ import annotations

import inspect
import logging
import sys
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar, Union

import anyio
import attrs

from ._resource_config import ResourceConfig
from ._resource_values import NO_RESOURCES as NO_RESOURCES
from ._resource_values import CallResources, add_note, describe_factory, exit_all, make_value
from .errors import ResourceCycleError, ResourceError

if TYPE_CHECKING:
    from ._resource_values import Opened
    from ._steps import StepInfo

__all__ = [
    "Resource",
    "ResourceConfig",
    "ResourceDefinition",
    "ResourceDescriptor",
    "ResourceManager",
]

T = TypeVar("T")

_log = logging.getLogger("anyflow")


def _callable(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not callable(value):
        raise TypeError(
            f"Resource takes a factory: a function (sync or async) that makes the value, "
            f"not {value!r}; write e.g. Resource(connect), not Resource(connect())"
        )


@attrs.frozen(eq=False)
class Resource(Generic[T]):
    """Marks a step parameter as a resource made by ``factory``:
    ``db: Annotated[Database, Resource(connect)]``."""

    factory: Callable[..., Any] = attrs.field(validator=_callable)
    """Called with its resource parameters (if any) by name; may be async, or
    return an async context manager."""
    cache: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    """True: one value per run, shared; False: a fresh value for each step call."""
    _plan: dict[str, Any] = attrs.field(init=False, factory=dict, repr=False)
    """The factory's resource parameters, read from its annotations on first use."""

    def __attrs_post_init__(self) -> None:
        # A factory defined in a function may name, in its (string) annotations,
        # other local factories or config paths: keep the names visible where
        # this marker was written (the step's annotation, or a factory's) to
        # resolve them with, as llama-index-workflows does with the step's.
        frame = sys._getframe(2)  # 0: here, 1: attrs' __init__, 2: the caller
        if frame.f_locals is not frame.f_globals:
            self._plan["localns"] = dict(frame.f_locals)

    @property
    def name(self) -> str:
        """The factory's ``__qualname__``: the name under which a
        ``ResourceManager`` may hold a value for it."""
        return describe_factory(self.factory)

    @property
    def _is_async(self) -> bool:
        """Whether the factory is an ``async def`` (llama-index-workflows' name)."""
        return inspect.iscoroutinefunction(self.factory)

    async def call(self, resource_manager: ResourceManager | None = None) -> Any:
        """Make a value now, as a run would: the factory called with its resource
        parameters (values ``resource_manager`` holds by name are used), awaited
        if it is async.  The value is not kept; a context manager the factory
        returns is entered, and exited by ``resource_manager.aclose()``.

        :raises ResourceError: if the factory (or a dependency's) raises.
        """
        manager = resource_manager if resource_manager is not None else ResourceManager()
        return await manager._make(self)

    def bound_to(self, annotation: Any) -> Resource[T]:
        """This resource, for a parameter annotated ``Annotated[annotation, ...]``."""
        return self

    def dependencies(self) -> tuple[tuple[str, ResourceDescriptor], ...]:
        """The factory's resource parameters: (parameter name, resource).

        :raises ResourceError: if the factory has a parameter anyflow cannot
            fill, or its annotations cannot be resolved.
        """
        plan = self._plan
        if "deps" not in plan:
            deps, problem, final = _read_factory(self.factory, plan.get("localns"))
            if not final:  # a name its annotations use may be defined later
                if problem is not None:
                    raise ResourceError(problem)
                return deps
            plan["deps"], plan["problem"] = deps, problem
        if plan["problem"] is not None:
            raise ResourceError(plan["problem"])
        deps_: tuple[tuple[str, ResourceDescriptor], ...] = plan["deps"]
        return deps_


ResourceDescriptor = Union[Resource[Any], ResourceConfig[Any]]  # noqa: UP007 (a runtime alias)
"""What may mark a parameter as a resource."""


@attrs.frozen
class ResourceDefinition:
    """A step's resource parameter (llama-index-workflows' ``ResourceDefinition``,
    what its ``StepConfig.resources`` lists)."""

    name: str
    """The parameter's name."""
    resource: ResourceDescriptor
    """Its ``Resource`` or ``ResourceConfig``."""
    type_annotation: Any = None
    """``T`` of its ``Annotated[T, Resource(...)]``."""


def _marker(annotation: Any) -> ResourceDescriptor | None:
    """The ``Resource`` or ``ResourceConfig`` of ``Annotated[T, marker]``, bound to ``T``."""
    if typing.get_origin(annotation) is not Annotated:
        return None
    for meta in annotation.__metadata__:
        if isinstance(meta, Resource | ResourceConfig):
            return meta.bound_to(typing.get_args(annotation)[0])
    return None


def _read_factory(
    factory: Callable[..., Any], localns: dict[str, Any] | None
) -> tuple[tuple[tuple[str, ResourceDescriptor], ...], str | None, bool]:
    """(resource parameters, problem or None, final) of ``factory``, its string
    annotations resolved in ``localns`` and its module (for a factory defined at
    module level, the module's names win; for one defined in a function, the
    names where its marker was written, most likely that function's).

    ``final`` is False when the annotations could not be resolved yet (a name
    defined later): the reading is tried again on the next use.
    """
    name = describe_factory(factory)
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return (), None, True  # a builtin without a signature: called with no arguments
    target = factory.__init__ if isinstance(factory, type) else factory  # type: ignore[misc]
    if localns and "<locals>" not in getattr(factory, "__qualname__", "<locals>"):
        # A factory of a module: its module's names win over the marker's.
        module = getattr(target, "__globals__", {})
        localns = {k: v for k, v in localns.items() if k not in module}
    try:
        hints = typing.get_type_hints(target, localns=localns, include_extras=True)
        final = True
    except Exception as exc:  # NameError, or a TypeError from an odd annotation
        hints, final = {}, False
        unresolved = f"cannot resolve the annotations of the factory {name}: {exc}"
    deps: list[tuple[str, ResourceDescriptor]] = []
    unfilled: list[str] = []
    for param in signature.parameters.values():
        annotation = hints.get(param.name, param.annotation)
        try:
            marker = _marker(annotation)
        except TypeError as exc:  # a ResourceConfig on a class it cannot fill
            return (), f"parameter {param.name!r} of the factory {name}: {exc}", final
        if marker is not None:
            deps.append((param.name, marker))
        elif param.default is inspect.Parameter.empty and param.kind not in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        ):
            unfilled.append(param.name)
    if unfilled and not final:
        return (), unresolved, False
    if unfilled:
        return (
            tuple(deps),
            f"the factory {name} takes {', '.join(map(repr, unfilled))}, which anyflow "
            "cannot fill: give each parameter a default, or annotate it "
            "Annotated[T, Resource(factory)] (or ResourceConfig(...)) to have it made",
            True,
        )
    return tuple(deps), None, final


def check_plan(resource: ResourceDescriptor, chain: tuple[Resource[Any], ...] = ()) -> None:
    """Raise ``ResourceError`` if ``resource``'s factories form a cycle or have
    parameters anyflow cannot fill."""
    if not isinstance(resource, Resource):
        return
    for seen in chain:
        if seen.factory == resource.factory:
            names = [r.name for r in chain[chain.index(seen) :]] + [resource.name]
            raise ResourceCycleError(
                f"Circular resource dependency detected: {' -> '.join(names)}: each of "
                "these factories takes the next as a resource parameter, so none can be "
                "made first; break the cycle (make one of them take a plain parameter)"
            )
    for _, dep in resource.dependencies():
        check_plan(dep, (*chain, resource))


class _Slot:
    """A cached resource: made once, by the first task that gets the lock."""

    __slots__ = ("factory", "lock", "ready", "value")

    def __init__(self, factory: object) -> None:
        self.factory = factory  # keeps an id used as a key from being reused
        self.lock = anyio.Lock()
        self.ready = False
        self.value: Any = None


def _key(resource: ResourceDescriptor, param: str) -> tuple[object, ...]:
    """What identifies a value: a factory and the parameter it fills (the factory
    by equality, so `Resource(pool.connect)` in two steps, two bound method
    objects equal to each other, is one resource); a config by file, selector
    and class."""
    if isinstance(resource, ResourceConfig):
        return ("config", resource.config_file, resource.path_selector, id(resource.cls_factory))
    factory = resource.factory
    try:
        hash(factory)
    except TypeError:  # an unhashable callable: by identity
        return (id(factory), param)
    return (factory, param)


class RunResources:
    """The resources of one run: made on first use, closed when the run ends.

    Cached values live in slots keyed by ``_key``.  A slot's lock makes
    concurrent first uses wait for one factory call instead of each calling
    the factory; a failed or cancelled call leaves the slot empty for the next
    attempt.  A factory's own resource parameters are made first, by the same
    rules; an uncached one is made once per step call, whoever asks for it.
    Values held by the workflow's ``ResourceManager`` are used as they are.
    """

    __slots__ = ("_manager", "_opened", "_slots", "close_errors")

    def __init__(self, manager: ResourceManager | None = None) -> None:
        self._manager = manager
        self._slots: dict[tuple[object, ...], _Slot] = {}
        self._opened: list[Opened] = []
        """Cached context managers entered so far, exited by ``aclose``."""
        self.close_errors: list[ResourceError] = []
        """What failed to close at the end of the run (also logged)."""

    async def resolve(self, step: StepInfo) -> Mapping[str, Any]:
        """The values of ``step``'s resource parameters, by parameter name.

        :raises ResourceError: if a factory raises; values this call opened
            (``cache=False`` context managers) are closed again first.
        """
        values: dict[str, Any] = {}
        opened: list[Opened] = []
        made: dict[tuple[object, ...], Any] = {}
        try:
            for param, resource in step.resources:
                values[param] = await self.value(step.name, param, resource, opened, made)
        except BaseException as exc:
            for failure in await exit_all(opened, exc):
                add_note(exc, f"also, {failure}")
            raise
        return CallResources(values, opened) if opened else values

    async def value(
        self,
        step: str,
        param: str,
        resource: ResourceDescriptor,
        opened: list[Opened],
        made: dict[tuple[object, ...], Any],
    ) -> Any:
        """The value of ``resource`` for ``param`` of ``step``: the manager's, the
        run's cached one, this call's (``made``), or a new one."""
        manager = self._manager
        if manager is not None and resource.name in manager.resources:
            return manager.resources[resource.name]
        key = _key(resource, param)
        if not resource.cache:
            if key not in made:
                made[key] = await self._make(step, param, resource, opened, made)
            return made[key]
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot(resource)
        if not slot.ready:
            async with slot.lock:
                if not slot.ready:
                    slot.value = await self._make(step, param, resource, self._opened, made)
                    slot.ready = True
        return slot.value

    async def _make(
        self,
        step: str,
        param: str,
        resource: ResourceDescriptor,
        opened: list[Opened],
        made: dict[tuple[object, ...], Any],
    ) -> Any:
        arguments: dict[str, Any] = {}
        if isinstance(resource, Resource):
            # The same error again, with the step and parameter it was met at:
            # from None, as the first has no cause to keep and its frames are
            # anyflow's own plan check.
            try:
                check_plan(resource)
            except ResourceCycleError as exc:  # llama-index-workflows' wording first
                raise ResourceCycleError(f"{exc} (resource {param!r} of step {step!r})") from None
            except ResourceError as exc:
                raise ResourceError(f"resource {param!r} of step {step!r}: {exc}") from None
            for dep_param, dep in resource.dependencies():
                arguments[dep_param] = await self.value(step, dep_param, dep, opened, made)
        return await make_value(step, param, resource, opened, arguments)

    async def aclose(self) -> None:
        """Exit the cached context managers, newest first, shielded from cancellation.

        It never raises an ``Exception``: the run is over and its outcome decided,
        so a failure to close is kept in ``close_errors`` and logged to the
        ``anyflow`` logger.
        """
        self._slots.clear()
        failures = await exit_all(self._opened, None)
        for failure in failures:
            _log.error("%s", failure, exc_info=failure.__cause__)
        self.close_errors += failures


class ResourceManager:
    """Values of resources, by name, shared by every run of the workflows given it.

    ``Workflow(resource_manager=manager)``: before calling a factory, a run
    looks for a value under the resource's name (the factory's ``__qualname__``,
    or a config's ``file.selector``) and uses it if there is one.  Set values
    with ``await manager.set(name, value)``, or have the manager make one with
    ``await manager.get(resource)`` (cached resources are kept).  A value in the
    manager belongs to you: runs never close it.  Context managers that ``get``
    entered are exited by ``await manager.aclose()`` (or ``async with manager:``).
    """

    def __init__(self) -> None:
        self.resources: dict[str, Any] = {}
        """The values held, by resource name."""
        self._made = RunResources()

    async def set(self, name: str, val: Any) -> None:
        """Hold ``val`` as the value of the resources named ``name``."""
        self.resources[name] = val

    async def get(self, resource: ResourceDescriptor) -> Any:
        """The value of ``resource``: the one held under its name, or a new one
        (made with its dependencies; kept under its name if it is cached).

        :raises ResourceError: if its factory (or a dependency's) raises.
        """
        if resource.name in self.resources:
            return self.resources[resource.name]
        value = await self._make(resource)
        if resource.cache:
            self.resources[resource.name] = value
        return value

    async def _make(self, resource: ResourceDescriptor) -> Any:
        """A new value of ``resource``, its dependencies taken from this manager."""
        runs = RunResources(self)
        runs._opened = self._made._opened  # entered context managers close with the manager
        return await runs.value("(outside a run)", resource.name, resource, runs._opened, {})

    def get_all(self) -> dict[str, Any]:
        """The values held, by resource name (the manager's own dictionary)."""
        return self.resources

    async def aclose(self) -> None:
        """Exit the context managers ``get`` entered, newest first."""
        await self._made.aclose()

    async def __aenter__(self) -> ResourceManager:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
