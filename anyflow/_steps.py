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
from .context import Context
from .context._context import STEP_CONTEXT, thread_safe
from .context._store import state_class_problem
from .decorators import StepOptions
from .errors import StateTypeError, WorkflowValidationError
from .events import Event
from .resources import CallResources, Resource, ResourceConfig, ResourceDescriptor

StepCall = Callable[[Any, Event, Context[Any], Mapping[str, Any]], Awaitable[Any]]

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
    state_type: type[Any] | None = None
    """The attrs class of ``ctx: Context[MyState]``; None for an untyped (or no) context."""


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
    event_param: inspect.Parameter | None = None
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
        elif event_param is None and annotation is not None:
            event_param = param
        elif event_param is None and param.default is inspect.Parameter.empty:
            break  # the event parameter, unannotated: reported below
        elif param.default is inspect.Parameter.empty:
            raise WorkflowValidationError(
                f"step {where} has a parameter {param.name!r} anyflow cannot fill: a step "
                "takes one event parameter (annotated with its event types), optionally "
                "a `ctx: Context` parameter, and resource parameters "
                "(`name: Annotated[T, Resource(factory)]`)"
            )
    if event_param is None:
        raise WorkflowValidationError(
            f"step {where} has no annotated event parameter, so anyflow cannot tell which "
            f"events it accepts: write e.g. `async def {name}(self, ev: StartEvent) -> StopEvent`"
        )
    accepts = _event_types(
        where, "accepts", _strip_annotated(hints[event_param.name]), allow_none=False
    )
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
    if resources:
        call = _caller_with_resources(
            target, order, event_param, ctx_param, [n for n, _ in resources]
        )
    else:
        call = _caller(target, order, event_param, ctx_param)
    return StepInfo(name, accepts, returns, options, call, tuple(resources), state_type)


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
