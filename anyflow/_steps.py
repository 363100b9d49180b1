"""Reading a step's signature: what it accepts, what it returns, how to call it."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Union

import attrs

from .context import Context
from .decorators import StepOptions
from .errors import WorkflowValidationError
from .events import Event
from .resources import Resource

StepCall = Callable[[Any, Event, Context[Any], Mapping[str, Any]], Awaitable[Any]]


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
    resources: tuple[tuple[str, Resource[Any]], ...] = ()
    """The step's resource parameters: (parameter name, resource)."""


def _flatten(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _flatten(arg)]
    return [annotation]


def _is_context(annotation: Any) -> bool:
    return annotation is Context or typing.get_origin(annotation) is Context


def read_step(
    owner: str, name: str, fn: Callable[..., Any], options: StepOptions, localns: Mapping[str, Any]
) -> StepInfo:
    """Build a ``StepInfo`` from a ``@step`` method.

    :raises WorkflowValidationError: naming the class, the step and the fix.
    """
    where = f"{owner}.{name}"
    if not inspect.iscoroutinefunction(fn):
        raise WorkflowValidationError(
            f"step {where} must be an async function: write `async def {name}`"
        )
    try:
        hints = typing.get_type_hints(fn, globalns=fn.__globals__, localns=dict(localns))
    except NameError as exc:
        raise WorkflowValidationError(
            f"cannot resolve the annotations of step {where}: {exc}; define the types it "
            "names before the workflow class (at module level if the module uses "
            "`from __future__ import annotations`)"
        ) from exc
    params = list(inspect.signature(fn).parameters.values())[1:]  # skip self
    event_param: inspect.Parameter | None = None
    ctx_param: inspect.Parameter | None = None
    for param in params:
        annotation = hints.get(param.name)
        if annotation is not None and _is_context(annotation):
            ctx_param = param
        elif event_param is None and annotation is not None:
            event_param = param
        elif event_param is None and param.default is inspect.Parameter.empty:
            break  # the event parameter, unannotated: reported below
        elif param.default is inspect.Parameter.empty:
            raise WorkflowValidationError(
                f"step {where} has a parameter {param.name!r} anyflow cannot fill: a step "
                "takes one event parameter (annotated with its event types) and optionally "
                "a `ctx: Context` parameter"
            )
    if event_param is None:
        raise WorkflowValidationError(
            f"step {where} has no annotated event parameter, so anyflow cannot tell which "
            f"events it accepts: write e.g. `async def {name}(self, ev: StartEvent) -> StopEvent`"
        )
    accepts = _event_types(where, "accepts", hints[event_param.name], allow_none=False)
    if "return" not in hints:
        raise WorkflowValidationError(
            f"step {where} has no return annotation, so anyflow cannot tell which events it "
            "produces: annotate it, e.g. `-> StopEvent` or `-> MyEvent | None`"
        )
    returns = _event_types(where, "returns", hints["return"], allow_none=True)
    return StepInfo(name, accepts, returns, options, _caller(fn, event_param, ctx_param))


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
    fn: Callable[..., Any], event_param: inspect.Parameter, ctx_param: inspect.Parameter | None
) -> StepCall:
    """A call shim fixed at definition time, so running a step builds no kwargs."""
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if ctx_param is None:
        if event_param.kind in positional:
            return lambda wf, ev, ctx, res: fn(wf, ev)
        return lambda wf, ev, ctx, res: fn(wf, **{event_param.name: ev})
    if event_param.kind in positional and ctx_param.kind in positional:
        params = list(inspect.signature(fn).parameters)
        if params.index(event_param.name) < params.index(ctx_param.name):
            return lambda wf, ev, ctx, res: fn(wf, ev, ctx)
        return lambda wf, ev, ctx, res: fn(wf, ctx, ev)
    names = (event_param.name, ctx_param.name)
    return lambda wf, ev, ctx, res: fn(wf, **{names[0]: ev, names[1]: ctx})
