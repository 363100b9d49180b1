"""Making one resource value, and closing the context managers entered to make them.

The steps of a value's life that do not depend on caching: a factory called
(awaited if it is async, entered if it returns an async context manager) or a
config read, with a failure turned into a ``ResourceError`` naming the step
and the parameter; and the entered context managers exited again, newest
first, shielded from cancellation. ``resources.RunResources`` decides when a
value is made and which values are shared; ``CallResources`` holds the
``cache=False`` context managers of one step call until the call shim
releases them. Kept apart so the caching rules read without the mechanics of
entering and exiting.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import anyio

from ._resource_config import ResourceConfig
from .errors import ResourceError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from contextlib import AbstractAsyncContextManager
    from typing import TypeAlias

    from .resources import ResourceDescriptor

    Opened: TypeAlias = tuple[str, str, AbstractAsyncContextManager[Any]]
    """An entered context manager: (step name, parameter name, context manager)."""

__all__ = [
    "NO_RESOURCES",
    "CallResources",
    "add_note",
    "describe_factory",
    "exit_all",
    "make_value",
]

NO_RESOURCES: Mapping[str, Any] = {}


def describe_factory(factory: Callable[[], Any]) -> str:
    return getattr(factory, "__qualname__", None) or repr(factory)


def _is_async_cm(value: object) -> bool:
    kind = type(value)
    if kind.__module__ == "unittest.mock":
        return False  # a mock answers to every method, __aenter__ too: inject it as it is
    return hasattr(kind, "__aenter__") and hasattr(kind, "__aexit__")


def add_note(error: BaseException, text: str) -> None:
    """``error.addadd_note(text)``, on Python 3.10 too."""
    notes = getattr(error, "__notes__", None)
    if notes is None:
        error.__notes__ = notes = []  # type: ignore[attr-defined]
    notes.append(text)


async def make_value(
    step: str,
    param: str,
    resource: ResourceDescriptor,
    opened: list[Opened],
    arguments: Mapping[str, Any] = NO_RESOURCES,
) -> Any:
    """Make a value of ``resource`` (a factory called with ``arguments``, or a
    config read); an entered context manager goes on ``opened``.

    :raises ResourceError: if the factory (or the context manager's ``__aenter__``,
        or reading the config) raises an ``Exception``; cancellation passes
        through as it is.
    """
    if isinstance(resource, ResourceConfig):
        try:
            return await resource.aload()
        except Exception as exc:
            raise ResourceError(
                f"resource {param!r} of step {step!r} failed: its config {resource.name} "
                f"could not be read: {type(exc).__name__}: {exc}"
            ) from exc
    factory = resource.factory
    try:
        made = factory(**arguments)
        if inspect.isawaitable(made):
            return await made
        if _is_async_cm(made):
            value = await made.__aenter__()
            opened.append((step, param, made))
            return value
        return made
    except Exception as exc:
        raise ResourceError(
            f"resource {param!r} of step {step!r} failed: its factory {describe_factory(factory)} "
            f"raised {type(exc).__name__}: {exc}"
        ) from exc


async def exit_all(opened: list[Opened], error: BaseException | None) -> list[ResourceError]:
    """Exit ``opened`` in reverse order, shielded from cancellation, each with
    ``error``'s details; return what failed to close (as ``ResourceError``s).

    A context manager's request to suppress ``error`` is ignored: a resource
    does not decide whether its step failed.
    """
    failures: list[ResourceError] = []
    fatal: BaseException | None = None
    details = (type(error), error, error.__traceback__) if error is not None else (None,) * 3
    with anyio.CancelScope(shield=True):
        while opened:
            step, param, cm = opened.pop()
            try:
                await cm.__aexit__(*details)
            except Exception as exc:
                if exc is error:
                    continue  # it re-raised what it was given: not a failure to close
                failure = ResourceError(
                    f"resource {param!r} of step {step!r} failed to close: "
                    f"{type(exc).__name__}: {exc}"
                )
                failure.__cause__ = exc
                failures.append(failure)
            except BaseException as exc:  # KeyboardInterrupt and the like
                if exc is not error and fatal is None:
                    fatal = exc  # raised once the others are closed too
    if fatal is not None:
        raise fatal
    return failures


class CallResources(dict[str, Any]):
    """The resource values of one step call that holds ``cache=False`` context
    managers, which the step's call shim exits with ``release`` when the call ends."""

    __slots__ = ("_opened",)

    def __init__(self, values: dict[str, Any], opened: list[Opened]) -> None:
        super().__init__(values)
        self._opened = opened

    async def release(self, error: BaseException | None) -> None:
        """Exit this call's context managers (``error``: the step's exception, if any).

        :raises ResourceError: if the step succeeded and a context manager
            failed to close (the first such failure; the others are noted on it).
            If the step failed, close failures are noted on ``error`` instead.
        """
        failures = await exit_all(self._opened, error)
        if not failures:
            return
        if error is not None:
            for failure in failures:
                add_note(error, f"also, {failure}")
            return
        first, *rest = failures
        for failure in rest:
            add_note(first, f"also, {failure}")
        raise first
