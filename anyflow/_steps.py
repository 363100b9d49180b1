"""Reading a step's signature: what it accepts, what it returns, how to call it."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, TypeVar, Union

import anyio.to_thread
import attrs

from ._dict_state import DictState
from ._resource_values import CallResources
from .context import Context
from .context._step_context import STEP_CONTEXT
from .context._store import state_class_problem
from .context._thread_host import thread_safe
from .decorators import StepOptions
from .errors import StateTypeError, WorkflowValidationError
from .events import Event
from .resources import Resource, ResourceConfig, ResourceDescriptor

StepCall = Callable[[Any, Any, Context[Any], Mapping[str, Any]], Awaitable[Any]]
"""``call(workflow, event, ctx, resources)``; for a join step, ``event`` is the
tuple of its events (``Delivery.bound``)."""

_KEYWORD = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


@attrs.frozen
class StepInfo:
    """A step as the workflow sees it."""

    name: str
    accepts: tuple[type[Event], ...]
    returns: tuple[type[Event], ...]
    """Event types the step may return (None is allowed and not listed)."""
    options: StepOptions
    call: StepCall = attrs.field(repr=False)
    """``call(workflow, event, ctx, resources)`` runs the step (``resources``: the
    values of its resource parameters, by name)."""
    resources: tuple[tuple[str, ResourceDescriptor], ...] = ()
    """The step's resource parameters: (parameter name, resource)."""
    resource_types: tuple[Any, ...] = attrs.field(default=(), kw_only=True)
    """The type each resource parameter is annotated with (``T`` of
    ``Annotated[T, Resource(...)]``), in the order of ``resources``."""
    event_name: str = attrs.field(default="", kw_only=True)
    """The name of the (first) parameter that receives the event."""
    context_parameter: str | None = attrs.field(default=None, kw_only=True)
    """The name of the ``Context`` parameter, if the step has one."""
    state_type: type[Any] | None = None
    """The attrs class of ``ctx: Context[MyState]``; None for an untyped (or no) context."""
    slots: tuple[tuple[str, type[Event]], ...] = ()
    """A join step's event parameters, (name, event class) in order: it is called
    once one event of each has arrived (see ``_core.reducer``, rule 7).  Empty
    for a step with one event parameter."""
    collection: tuple[str, tuple[type[Event], ...]] | None = None
    """(parameter name, event classes) of a ``list[E]`` parameter, which anyflow
    reads but cannot run (see ``fan_in_problem``)."""

    def takes(self, event_type: type) -> bool:
        """Whether an event of ``event_type`` is delivered to this step: its class
        is one the step accepts or, unless ``@step(accept_event_subclasses=False)``,
        a subclass of one."""
        if self.options.accept_event_subclasses is False:
            return event_type in self.accepts
        return issubclass(event_type, self.accepts)


def _flatten(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _flatten(arg)]
    return [annotation]


def _is_context(annotation: Any) -> bool:
    return annotation is Context or typing.get_origin(annotation) is Context


def _strip_annotated(annotation: Any) -> Any:
    """``T`` for ``Annotated[T, ...]``; other annotations as they are."""
    if typing.get_origin(annotation) is Annotated:
        return typing.get_args(annotation)[0]
    return annotation


def _resource_of(where: str, name: str, annotation: Any) -> ResourceDescriptor | None:
    """The ``Resource`` (or ``ResourceConfig``) in ``Annotated[T, Resource(...)]``,
    bound to ``T``, or None."""
    if typing.get_origin(annotation) is not Annotated:
        return None
    found = [m for m in annotation.__metadata__ if isinstance(m, Resource | ResourceConfig)]
    if len(found) > 1:
        raise WorkflowValidationError(
            f"step {where} gives parameter {name!r} {len(found)} Resource markers; "
            "give it one: Annotated[T, Resource(factory)]"
        )
    if not found:
        return None
    try:
        return found[0].bound_to(typing.get_args(annotation)[0])
    except TypeError as exc:
        raise WorkflowValidationError(f"step {where}, parameter {name!r}: {exc}") from exc


def _state_type(where: str, annotation: Any) -> type[Any] | None:
    """The state class of a ``Context[MyState]`` annotation (None if untyped)."""
    args = typing.get_args(annotation)
    if not args:
        return None
    (state,) = args
    if state is Any or isinstance(state, TypeVar):
        return None
    if state is dict or typing.get_origin(state) is dict or state is DictState:
        return None
    if isinstance(state, type):
        problem = state_class_problem(state)
    else:
        problem = (
            f"{state!r} is not a class; a typed state is an attrs class with a default for "
            "every field"
        )
    if problem is not None:
        raise WorkflowValidationError(f"step {where} takes Context[{_name(state)}]: {problem}")
    state_type: type[Any] = state
    return state_type


def _name(t: Any) -> str:
    return getattr(t, "__qualname__", None) or repr(t)


def state_type_of(workflow: str, steps: Mapping[str, StepInfo]) -> type[Any] | None:
    """The one state class the steps' ``Context[...]`` annotations agree on: the
    most derived of them, so steps written for a parent class (a base
    workflow's, say) share the state of a subclass.

    :raises StateTypeError: naming two steps whose classes are not one a
        subclass of the other.
    """
    first: StepInfo | None = None
    for info in steps.values():
        if info.state_type is None:
            continue
        if first is None or issubclass(info.state_type, first.state_type):  # type: ignore[arg-type]
            first = info
    if first is None:
        return None
    for info in steps.values():
        if info.state_type is not None and not issubclass(first.state_type, info.state_type):  # type: ignore[arg-type]
            raise StateTypeError(
                f"steps of {workflow} disagree on the state type: {first.name} takes "
                f"Context[{_name(first.state_type)}] and {info.name} takes "
                f"Context[{_name(info.state_type)}], which are not in a compatible "
                "inheritance hierarchy; a run has one state, so give every step the same "
                "Context[...] (or a subclass of it, or a bare Context)"
            )
    return first.state_type


def type_hints(
    fn: Callable[..., Any], localns: Mapping[str, Any] | None, fix: str
) -> dict[str, Any]:
    """``fn``'s annotations, resolved (``Annotated`` kept), names looked up in its
    module and in ``localns``.

    :raises WorkflowValidationError: naming the name that is not defined
        (llama-index-workflows' wording first), then ``fix``.
    """
    try:
        return typing.get_type_hints(
            fn,
            globalns=getattr(fn, "__globals__", None),
            localns=dict(localns or {}),
            include_extras=True,
        )
    except NameError as exc:
        missing = getattr(exc, "name", None)
        raise WorkflowValidationError(
            f"Failed to resolve type annotations for {getattr(fn, '__qualname__', fn)}."
            + (f" Missing name: {missing}." if missing else f" {exc}.")
            + f" {fix}"
        ) from exc


def read_step(
    owner: str,
    name: str,
    fn: Callable[..., Any],
    options: StepOptions,
    localns: Mapping[str, Any],
    *,
    method: bool = True,
) -> StepInfo:
    """Build a ``StepInfo`` from a ``@step`` method (or, ``method=False``, a function
    added with ``@step(workflow=...)``, which takes no ``self``, unless its first
    parameter is an unannotated ``self``: then it is given the workflow, as a method).

    :raises WorkflowValidationError: naming the class, the step and the fix.
    """
    where = f"{owner}.{name}"
    if inspect.isasyncgenfunction(fn) or not callable(fn):
        raise WorkflowValidationError(
            f"step {where} must be a function that returns an event: write `async def {name}` "
            "(or a plain `def`, which runs in a worker thread)"
        )
    hints = type_hints(
        fn,
        localns,
        "Define the types it names before the workflow class (at module level if the "
        "module uses `from __future__ import annotations`).",
    )
    params = list(inspect.signature(fn).parameters.values())
    if not method and params and params[0].name == "self" and "self" not in hints:
        method = True  # a function written like a method is given the workflow as self
    params = params[1 if method else 0 :]
    event_params: list[inspect.Parameter] = []
    ctx_param: inspect.Parameter | None = None
    state_type: type[Any] | None = None
    resources: list[tuple[str, ResourceDescriptor]] = []
    for param in params:
        annotation = hints.get(param.name)
        resource = _resource_of(where, param.name, annotation)
        if resource is not None:
            if param.kind not in _KEYWORD:
                raise WorkflowValidationError(
                    f"step {where} has a resource parameter {param.name!r} that cannot be "
                    "passed by name; anyflow passes resources as keyword arguments, so "
                    "make it an ordinary parameter (not positional-only or *args/**kwargs)"
                )
            resources.append((param.name, resource))
            continue
        annotation = _strip_annotated(annotation)
        if annotation is not None and _is_context(annotation):
            ctx_param = param
            state_type = _state_type(where, annotation)
        elif annotation is not None and (not event_params or _names_events(annotation)):
            event_params.append(param)
        elif not event_params and param.default is inspect.Parameter.empty:
            break  # the event parameter, unannotated: reported below
        elif param.default is inspect.Parameter.empty:
            raise WorkflowValidationError(
                f"step {where} has a parameter {param.name!r} anyflow cannot fill: a step "
                "takes event parameters (annotated with their event types), optionally "
                "a `ctx: Context` parameter, and resource parameters "
                "(`name: Annotated[T, Resource(factory)]`)"
            )
    if not event_params:
        raise WorkflowValidationError(
            f"step {where} has no annotated event parameter, so anyflow cannot tell which "
            f"events it accepts: write e.g. `async def {name}(self, ev: StartEvent) -> StopEvent`"
        )
    event_param = event_params[0]
    slots: tuple[tuple[str, type[Event]], ...] = ()
    collection: tuple[str, tuple[type[Event], ...]] | None = None
    if len(event_params) > 1:
        slots = _join_slots(where, event_params, hints)
        accepts = tuple(dict.fromkeys(t for _, t in slots))
        if options.catch is not None:
            raise WorkflowValidationError(
                f"@catch_error step {where} takes several event parameters; a catching "
                "step takes one, `ev: StepFailedEvent`"
            )
    else:
        annotation = _strip_annotated(hints[event_param.name])
        elements = _list_elements(annotation)
        if elements is not None:
            collection = (event_param.name, elements)
            accepts = elements
        else:
            accepts = _event_types(where, "accepts", annotation, allow_none=False)
    if "return" not in hints:
        raise WorkflowValidationError(
            f"step {where} has no return annotation, so anyflow cannot tell which events it "
            "produces: annotate it, e.g. `-> StopEvent` or `-> MyEvent | None`"
        )
    returns = _event_types(where, "returns", _strip_annotated(hints["return"]), allow_none=True)
    order = [p.name for p in params]
    target = fn if method else _as_method(fn)
    if not inspect.iscoroutinefunction(target):
        target = _in_thread(target)
    if collection is not None:
        call = _fan_in_refused(where, collection)
    elif slots:
        call = _join_caller(target, params, [n for n, _ in slots], ctx_param, resources)
    elif resources:
        call = _caller_with_resources(
            target, order, event_param, ctx_param, [n for n, _ in resources]
        )
    else:
        call = _caller(target, order, event_param, ctx_param)
    return StepInfo(
        name,
        accepts,
        returns,
        options,
        call,
        tuple(resources),
        state_type,
        slots,
        collection,
        resource_types=tuple(typing.get_args(hints[n])[0] for n, _ in resources),
        event_name=event_param.name,
        context_parameter=ctx_param.name if ctx_param is not None else None,
    )


def _names_events(annotation: Any) -> bool:
    """Whether a parameter annotated ``annotation`` is an event parameter: event
    classes (a union of them) or a ``list`` of them."""
    if _list_elements(annotation) is not None:
        return True
    return all(isinstance(t, type) and issubclass(t, Event) for t in _flatten(annotation))


def _list_elements(annotation: Any) -> tuple[type[Event], ...] | None:
    """The event classes of a ``list[E]`` (``list[A | B]``, ``list[E] | None``)
    annotation, in order; None for any other annotation."""
    members = [t for t in _flatten(annotation) if t is not type(None)]
    if len(members) != 1 or typing.get_origin(members[0]) is not list:
        return None
    args = typing.get_args(members[0])
    found = [t for arg in args for t in _flatten(arg) if t is not type(None)]
    if not found or not all(isinstance(t, type) and issubclass(t, Event) for t in found):
        return None
    return tuple(dict.fromkeys(found))


def _join_slots(
    where: str, params: list[inspect.Parameter], hints: Mapping[str, Any]
) -> tuple[tuple[str, type[Event]], ...]:
    """(parameter name, event class) of each event parameter of a join step.

    :raises WorkflowValidationError: for a parameter that does not name a
        single event class (a union, a list).
    """
    names = ", ".join(p.name for p in params)
    slots = []
    for param in params:
        annotation = _strip_annotated(hints[param.name])
        if _list_elements(annotation) is not None:
            raise WorkflowValidationError(
                f"step {where} takes a list[...] parameter {param.name!r} beside other event "
                f"parameters ({names}); a list[E] parameter (a fan-in) must be the step's only "
                "event parameter, and a join takes one event per parameter"
            )
        types = _event_types(where, "accepts", annotation, allow_none=False)
        if len(types) != 1:
            shown = " | ".join(t.__name__ for t in types)
            raise WorkflowValidationError(
                f"step {where} takes several event parameters ({names}), so it is called once "
                "with one event for each; each event parameter must name a single event type, "
                f"but {param.name!r} is annotated {shown}. Union-typed join parameters are not "
                "supported: give it one type"
            )
        slots.append((param.name, types[0]))
    return tuple(slots)


def _fan_in_refused(where: str, collection: tuple[str, tuple[type[Event], ...]]) -> StepCall:
    """The call of a ``list[E]`` step, which a run never makes (``Workflow.run``
    refuses such a workflow first, see ``fan_in_problem``)."""

    async def call(wf: Any, ev: Event, ctx: Context[Any], res: Mapping[str, Any]) -> Any:
        raise WorkflowValidationError(fan_in_problem(where, collection))

    return call


def fan_in_problem(where: str, collection: tuple[str, tuple[type[Event], ...]]) -> str:
    """Why a step with a ``list[E]`` parameter cannot run in anyflow."""
    param, elements = collection
    shown = " | ".join(t.__name__ for t in elements)
    return (
        f"step {where} collects list[{shown}] in parameter {param!r}: in "
        "llama-index-workflows such a step gathers the events of a step that returns a "
        "list (a fan-out stream), which anyflow does not have. Send the events with "
        "ctx.send_event and gather them with ctx.collect_events(ev, [...]), or take one "
        "event per parameter (a join: `async def step(self, a: A, b: B)`)"
    )


def _join_caller(
    fn: Callable[..., Any],
    params: list[inspect.Parameter],
    slot_names: list[str],
    ctx_param: inspect.Parameter | None,
    resources: list[tuple[str, ResourceDescriptor]],
) -> StepCall:
    """The call shim of a join step: ``call(wf, bound, ctx, resources)`` with
    ``bound`` the events of its slots, in slot order (``Delivery.bound``).

    Each parameter the step takes is passed positionally if it is
    positional-only, by name otherwise; when the call ends, what it opened is
    released as ``_caller_with_resources`` does.
    """
    slot_of = {name: i for i, name in enumerate(slot_names)}
    ctx_name = ctx_param.name if ctx_param is not None else None
    resource_names = {name for name, _ in resources}
    # (name, where its value comes from, passed positionally)
    plan: list[tuple[str, str | int, bool]] = []
    for param in params:
        source: str | int
        if param.name in slot_of:
            source = slot_of[param.name]
        elif param.name == ctx_name:
            source = "ctx"
        elif param.name in resource_names:
            source = "resource"
        else:
            continue  # a parameter with a default anyflow does not fill
        plan.append((param.name, source, param.kind is inspect.Parameter.POSITIONAL_ONLY))

    async def call(wf: Any, bound: Any, ctx: Context[Any], res: Mapping[str, Any]) -> Any:
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for name, source, positional in plan:
            if source == "ctx":
                value: Any = ctx
            elif source == "resource":
                value = res[name]
            else:
                value = bound[source]
            if positional:
                args.append(value)
            else:
                kwargs[name] = value
        if not isinstance(res, CallResources):
            return await fn(wf, *args, **kwargs)
        try:
            result = await fn(wf, *args, **kwargs)
        except BaseException as exc:
            await res.release(exc)
            raise
        await res.release(None)
        return result

    return call


def _as_method(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A function step called like a method: the workflow argument is dropped."""
    if inspect.iscoroutinefunction(fn):

        async def async_step(wf: Any, /, *args: Any, **kwargs: Any) -> Any:
            return await fn(*args, **kwargs)

        return async_step

    def sync_step(wf: Any, /, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return sync_step


def _in_thread(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A plain ``def`` step as a coroutine function that runs it in a worker thread.

    The step's context is handed over as one whose calls into the run go back
    to the event loop's thread (``ThreadContext``), since the run's state is
    not thread-safe.  A thread cannot be interrupted, so a cancelled run waits
    for the function to return.
    """

    async def in_thread(*args: Any, **kwargs: Any) -> Any:
        ctx = thread_safe(STEP_CONTEXT.get(None))
        args = tuple(ctx if isinstance(a, Context) else a for a in args)
        kwargs = {k: ctx if isinstance(v, Context) else v for k, v in kwargs.items()}

        def run() -> Any:
            if ctx is not None:
                STEP_CONTEXT.set(ctx)
            return fn(*args, **kwargs)

        return await anyio.to_thread.run_sync(run)

    return in_thread


def _event_types(
    where: str, role: str, annotation: Any, *, allow_none: bool
) -> tuple[type[Event], ...]:
    out: list[type[Event]] = []
    for t in _flatten(annotation):
        if t is None or t is type(None):
            if allow_none:
                continue
        elif isinstance(t, type) and issubclass(t, Event):
            out.append(t)
            continue
        raise WorkflowValidationError(
            f"step {where} {role} {t!r}, which is not an Event subclass; "
            "annotate it with Event subclasses (a union for several)"
            + (" or None" if allow_none else "")
        )
    if not out and role == "accepts":
        raise WorkflowValidationError(f"step {where} accepts no event type")
    return tuple(out)


def _caller(
    fn: Callable[..., Any],
    order: list[str],
    event_param: inspect.Parameter,
    ctx_param: inspect.Parameter | None,
) -> StepCall:
    """A call shim fixed at definition time, so running a step builds no kwargs
    (``order``: the step's parameter names after ``self``, as written)."""
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if ctx_param is None:
        if event_param.kind in positional:
            return lambda wf, ev, ctx, res: fn(wf, ev)
        return lambda wf, ev, ctx, res: fn(wf, **{event_param.name: ev})
    if event_param.kind in positional and ctx_param.kind in positional:
        if order.index(event_param.name) < order.index(ctx_param.name):
            return lambda wf, ev, ctx, res: fn(wf, ev, ctx)
        return lambda wf, ev, ctx, res: fn(wf, ctx, ev)
    names = (event_param.name, ctx_param.name)
    return lambda wf, ev, ctx, res: fn(wf, **{names[0]: ev, names[1]: ctx})


def _caller_with_resources(
    fn: Callable[..., Any],
    order: list[str],
    event_param: inspect.Parameter,
    ctx_param: inspect.Parameter | None,
    resource_names: list[str],
) -> StepCall:
    """The call shim of a step with resource parameters.

    Resources, and the event and context unless they are positional-only, are
    passed by name, so their order in the signature does not matter.  When the
    call ends, ``cache=False`` context managers opened for it are exited (see
    ``resources.CallResources``), with the step's exception if it raised.
    """
    positional = sorted(
        (p for p in (event_param, ctx_param) if p is not None and p.kind not in _KEYWORD),
        key=lambda p: order.index(p.name),
    )
    ev_position = positional.index(event_param) if event_param in positional else None
    ev_name = None if ev_position is not None else event_param.name
    ctx_name = ctx_param.name if ctx_param is not None and ctx_param not in positional else None
    names = tuple(resource_names)

    async def call(wf: Any, ev: Event, ctx: Context[Any], res: Mapping[str, Any]) -> Any:
        kwargs = {name: res[name] for name in names}
        if ev_name is not None:
            kwargs[ev_name] = ev
        if ctx_name is not None:
            kwargs[ctx_name] = ctx
        args: list[Any] = [ctx] * len(positional)
        if ev_position is not None:
            args[ev_position] = ev
        if not isinstance(res, CallResources):
            return await fn(wf, *args, **kwargs)
        try:
            result = await fn(wf, *args, **kwargs)
        except BaseException as exc:
            await res.release(exc)
            raise
        await res.release(None)
        return result

    return call
