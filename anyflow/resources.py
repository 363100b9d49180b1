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

A factory that raises fails the step attempt with ``ResourceError`` naming the
step and the parameter (the factory's exception is its ``__cause__``), so the
step's retry policy applies.  Failures are not cached: the next attempt calls
the factory again.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio
import attrs

from .errors import ResourceError

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager
    from typing import TypeAlias

    from ._steps import StepInfo

    _Opened: TypeAlias = tuple[str, str, AbstractAsyncContextManager[Any]]
    """An entered context manager: (step name, parameter name, context manager)."""

__all__ = ["Resource"]

T = TypeVar("T")

NO_RESOURCES: Mapping[str, Any] = {}

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

    factory: Callable[[], Any] = attrs.field(validator=_callable)
    """Called with no arguments; may be async, or return an async context manager."""
    cache: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    """True: one value per run, shared; False: a fresh value for each step call."""


def _describe(factory: Callable[[], Any]) -> str:
    return getattr(factory, "__qualname__", None) or repr(factory)


def _is_async_cm(value: object) -> bool:
    kind = type(value)
    return hasattr(kind, "__aenter__") and hasattr(kind, "__aexit__")


def _note(error: BaseException, text: str) -> None:
    """``error.add_note(text)``, on Python 3.10 too."""
    notes = getattr(error, "__notes__", None)
    if notes is None:
        error.__notes__ = notes = []  # type: ignore[attr-defined]
    notes.append(text)


async def _make(step: str, param: str, resource: Resource[Any], opened: list[_Opened]) -> Any:
    """Make a value of ``resource``; an entered context manager goes on ``opened``.

    :raises ResourceError: if the factory (or the context manager's ``__aenter__``)
        raises an ``Exception``; cancellation passes through as it is.
    """
    factory = resource.factory
    try:
        made = factory()
        if inspect.isawaitable(made):
            return await made
        if _is_async_cm(made):
            value = await made.__aenter__()
            opened.append((step, param, made))
            return value
        return made
    except Exception as exc:
        raise ResourceError(
            f"resource {param!r} of step {step!r} failed: its factory {_describe(factory)} "
            f"raised {type(exc).__name__}: {exc}"
        ) from exc


async def _exit_all(opened: list[_Opened], error: BaseException | None) -> list[ResourceError]:
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

    def __init__(self, values: dict[str, Any], opened: list[_Opened]) -> None:
        super().__init__(values)
        self._opened = opened

    async def release(self, error: BaseException | None) -> None:
        """Exit this call's context managers (``error``: the step's exception, if any).

        :raises ResourceError: if the step succeeded and a context manager
            failed to close (the first such failure; the others are noted on it).
            If the step failed, close failures are noted on ``error`` instead.
        """
        failures = await _exit_all(self._opened, error)
        if not failures:
            return
        if error is not None:
            for failure in failures:
                _note(error, f"also, {failure}")
            return
        first, *rest = failures
        for failure in rest:
            _note(first, f"also, {failure}")
        raise first


class _Slot:
    """A cached resource: made once, by the first task that gets the lock."""

    __slots__ = ("factory", "lock", "ready", "value")

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.factory = factory  # keeps an id used as a key from being reused
        self.lock = anyio.Lock()
        self.ready = False
        self.value: Any = None


class RunResources:
    """The resources of one run: made on first use, closed when the run ends.

    Cached values live in slots keyed by (factory, parameter name), the factory
    compared by equality (by identity if it is unhashable).  A slot's
    lock makes concurrent first uses wait for one factory call instead of each
    calling the factory; a failed or cancelled call leaves the slot empty for
    the next attempt.
    """

    __slots__ = ("_opened", "_slots", "close_errors")

    def __init__(self) -> None:
        self._slots: dict[tuple[object, str], _Slot] = {}
        self._opened: list[_Opened] = []
        """Cached context managers entered so far, exited by ``aclose``."""
        self.close_errors: list[ResourceError] = []
        """What failed to close at the end of the run (also logged)."""

    async def resolve(self, step: StepInfo) -> Mapping[str, Any]:
        """The values of ``step``'s resource parameters, by parameter name.

        :raises ResourceError: if a factory raises; values this call opened
            (``cache=False`` context managers) are closed again first.
        """
        values: dict[str, Any] = {}
        opened: list[_Opened] = []
        try:
            for param, resource in step.resources:
                if resource.cache:
                    values[param] = await self._cached(step.name, param, resource)
                else:
                    values[param] = await _make(step.name, param, resource, opened)
        except BaseException as exc:
            for failure in await _exit_all(opened, exc):
                _note(exc, f"also, {failure}")
            raise
        return CallResources(values, opened) if opened else values

    async def _cached(self, step: str, param: str, resource: Resource[Any]) -> Any:
        factory = resource.factory
        try:
            # By equality, so that `Resource(pool.connect)` in two steps (two bound
            # method objects, equal to each other) is one resource.
            key: tuple[object, str] = (factory, param)
            slot = self._slots.get(key)
        except TypeError:  # an unhashable callable: by identity
            key = (id(factory), param)
            slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot(factory)
        if not slot.ready:
            async with slot.lock:
                if not slot.ready:
                    slot.value = await _make(step, param, resource, self._opened)
                    slot.ready = True
        return slot.value

    async def aclose(self) -> None:
        """Exit the cached context managers, newest first, shielded from cancellation.

        It never raises an ``Exception``: the run is over and its outcome decided,
        so a failure to close is kept in ``close_errors`` and logged to the
        ``anyflow`` logger.
        """
        self._slots.clear()
        failures = await _exit_all(self._opened, None)
        for failure in failures:
            _log.error("%s", failure, exc_info=failure.__cause__)
        self.close_errors += failures
