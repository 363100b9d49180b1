"""Step-signature helpers under llama-index-workflows' names (``workflows.utils``,
re-exported by ``anyflow.utils``).

Code written for the incumbent reads a function's step signature with
``inspect_signature(fn)`` and checks it with ``validate_step_signature(spec)``,
and lists a class's steps with ``get_steps_from_class``.  These answer with
anyflow's own reading of annotations (the primitives of ``anyflow._steps``, the
one place that reads a step), under the incumbent's rules (several event
parameters make a join, each of one event type; a ``list[E]`` parameter stands
alone), and with its error messages.  A workflow does not need them:
``Workflow.steps()`` is the reading anyflow itself runs on.
"""

from __future__ import annotations

import inspect
import typing
from typing import TYPE_CHECKING, Any

import attrs

from ._steps import (
    _flatten,
    _is_context,
    _list_elements,
    _resource_of,
    _strip_annotated,
    type_hints,
)
from .decorators import STEP_ATTRIBUTE
from .errors import WorkflowValidationError
from .events import Event
from .resources import ResourceDescriptor

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "StepSignatureSpec",
    "get_steps_from_class",
    "get_steps_from_instance",
    "inspect_signature",
    "validate_step_signature",
]
# _get_param_types and _get_return_types are the incumbent's private names for
# two steps of the reading; anyflow.utils offers them for code that imports them.


@attrs.frozen
class StepSignatureSpec:
    """What a step function's signature says, before it is checked."""

    accepted_events: dict[str, list[Any]]
    """Parameter name -> the event types it is annotated with, for every
    parameter annotated only with event types."""
    return_types: list[Any]
    """The return annotation's types (a union flattened, None left out)."""
    context_parameter: str | None
    """The ``Context`` parameter's name, if there is one."""
    context_state_type: Any | None
    """``S`` of ``Context[S]``."""
    resources: list[tuple[str, ResourceDescriptor]]
    """(parameter name, ``Resource`` or ``ResourceConfig``) of each resource parameter."""
    collection_param: tuple[str, tuple[Any, ...]] | None = None
    """(parameter name, event types) of a ``list[E]`` parameter, if there is one
    (its event types are also in ``accepted_events``)."""


def _hints(fn: Callable[..., Any], localns: Mapping[str, Any] | None) -> dict[str, Any]:
    return type_hints(
        fn,
        localns,
        "Define the types it names before it (at module level if the module uses "
        "`from __future__ import annotations`), or pass localns=.",
    )


def _get_param_types(param: inspect.Parameter, type_hints: Mapping[str, Any]) -> list[Any]:
    """The types a parameter is annotated with: a union flattened, None left
    out, ``[Any]`` when it has no annotation."""
    annotation = type_hints.get(param.name, param.annotation)
    if annotation is inspect.Parameter.empty:
        return [Any]
    return [t for t in _flatten(annotation) if t is not type(None)]


def _get_return_types(
    fn: Callable[..., Any], localns: Mapping[str, Any] | None = None
) -> list[Any]:
    """The types of ``fn``'s return annotation: a union flattened, None left
    out; empty without an annotation."""
    hints = _hints(fn, localns)
    if "return" not in hints:
        return []
    return [t for t in _flatten(_strip_annotated(hints["return"])) if t is not type(None)]


def _is_event_type(t: object) -> bool:
    return isinstance(t, type) and issubclass(t, Event)


def inspect_signature(
    fn: Callable[..., Any], localns: Mapping[str, Any] | None = None
) -> StepSignatureSpec:
    """Read ``fn``'s signature as a step's (``self`` and ``cls`` skipped),
    without judging it: ``validate_step_signature`` does that.

    :raises TypeError: if ``fn`` is not callable.
    :raises WorkflowValidationError: if its annotations name types that cannot be
        resolved (pass the names in ``localns``).
    """
    if not callable(fn):
        raise TypeError(f"Expected a callable object, got {type(fn).__name__}")
    hints = _hints(fn, localns)
    where = getattr(fn, "__qualname__", repr(fn))
    accepted: dict[str, list[Any]] = {}
    context: str | None = None
    state: Any | None = None
    resources: list[tuple[str, ResourceDescriptor]] = []
    collection: tuple[str, tuple[Any, ...]] | None = None
    for param in inspect.signature(fn).parameters.values():
        if param.name in ("self", "cls"):
            continue
        annotation = hints.get(param.name)
        resource = _resource_of(where, param.name, annotation)
        if resource is not None:
            resources.append((param.name, resource))
            continue
        annotation = _strip_annotated(annotation)
        if annotation is not None and _is_context(annotation):
            context = param.name
            args = typing.get_args(annotation)
            state = args[0] if args else None
            continue
        elements = _list_elements(annotation)
        if elements is not None:
            if collection is not None:
                raise WorkflowValidationError(
                    "A step may declare at most one list[E] collection parameter, but "
                    f"{where} has {collection[0]!r} and {param.name!r}: take one list "
                    "parameter (a union list[A | B] gathers several types)"
                )
            collection = (param.name, elements)
            accepted[param.name] = list(elements)
            continue
        types = _get_param_types(param, hints)
        if all(_is_event_type(t) for t in types):
            accepted[param.name] = types
    return StepSignatureSpec(
        accepted_events=accepted,
        return_types=_get_return_types(fn, localns),
        context_parameter=context,
        context_state_type=state,
        resources=resources,
        collection_param=collection,
    )


def validate_step_signature(spec: StepSignatureSpec) -> None:
    """Check a signature read by ``inspect_signature`` as anyflow checks a step:
    an event parameter (several make a join, each naming one event type; a
    ``list[E]`` parameter is the only one) and an annotated return.

    :raises WorkflowValidationError: saying which rule the signature breaks.
    """
    found = len(spec.accepted_events)
    if found == 0:
        raise WorkflowValidationError(
            "Step signature must have at least one parameter annotated as type Event "
            "(e.g. `ev: StartEvent`)"
        )
    if found > 1 and spec.collection_param is not None:
        raise WorkflowValidationError(
            "A list[E] collection parameter cannot be combined with other event "
            f"parameters ({', '.join(spec.accepted_events)}): take one list[E] parameter, "
            "or one event per parameter (a join)"
        )
    if found > 1:
        for name, types in spec.accepted_events.items():
            if len(types) != 1:
                raise WorkflowValidationError(
                    "A step with several event parameters (a join) needs each to declare a "
                    f"single event type, but {name!r} declares {len(types)} "
                    f"({' | '.join(getattr(t, '__name__', repr(t)) for t in types)}): "
                    "union-typed join parameters are not supported"
                )
    if not spec.return_types:
        raise WorkflowValidationError(
            "Return types of workflows step functions must be annotated with their type "
            "(e.g. `-> StopEvent`, or `-> MyEvent | None`)"
        )


def get_steps_from_class(cls: object) -> dict[str, Callable[..., Any]]:
    """The functions of ``cls`` (and its bases) marked with ``@step`` or
    ``@catch_error``, by name."""
    return {
        name: member
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if hasattr(member, STEP_ATTRIBUTE)
    }


def get_steps_from_instance(workflow: object) -> dict[str, Callable[..., Any]]:
    """The bound methods of ``workflow`` marked with ``@step`` or ``@catch_error``,
    by name."""
    return {
        name: member
        for name, member in inspect.getmembers(workflow, inspect.ismethod)
        if hasattr(member, STEP_ATTRIBUTE)
    }
