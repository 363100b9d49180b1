"""The run's shared state: a dictionary, or an instance of the workflow's state class."""

from __future__ import annotations

import copy
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Generic

import anyio
import attrs

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    # A default lets ``StateStore`` and ``Context`` be written without a
    # parameter (meaning "untyped") even under mypy --strict.
    from typing_extensions import TypeVar

    StateT = TypeVar("StateT", default=Any)
else:
    from typing import TypeVar

    StateT = TypeVar("StateT")

__all__ = ["StateStore", "state_class_problem"]

_MISSING: Any = object()


def state_class_problem(cls: type[Any]) -> str | None:
    """Why ``cls`` cannot be a workflow's state class, or None if it can.

    A state class is a mutable attrs class with a default for every field, so
    that each run starts from ``cls()``.
    """
    name = cls.__qualname__
    if not attrs.has(cls):
        return (
            f"{name} is not an attrs class; a typed state is an attrs class with a default "
            f"for every field, e.g. `@attrs.define class {name}: count: int = 0`"
        )
    inspect_class = getattr(attrs, "inspect", None)  # attrs >= 25.4
    if inspect_class is not None and inspect_class(cls).is_frozen:
        return (
            f"{name} is frozen, but steps change the state in place: "
            f"use @attrs.define (or @attrs.mutable) for {name}"
        )
    missing = [f.name for f in attrs.fields(cls) if f.default is attrs.NOTHING]
    if missing:
        return (
            f"give every field of {name} a default (each run starts from {name}()): "
            f"{', '.join(missing)} {'has' if len(missing) == 1 else 'have'} none"
        )
    return None


def _fields(node: Any) -> dict[str, attrs.Attribute[Any]] | None:
    """The fields of an attrs instance, or None if ``node`` is not one."""
    return attrs.fields_dict(type(node)) if attrs.has(type(node)) else None


def _no_field(node: Any, part: str, path: str) -> AttributeError:
    names = ", ".join(attrs.fields_dict(type(node)))
    return AttributeError(
        f"{type(node).__qualname__} has no field {part!r} (in the store path {path!r}); "
        f"its fields are: {names}"
    )


class StateStore(Generic[StateT]):
    """State shared by a run's steps (and readable by its caller).

    Untyped (the default), the state is a dictionary; typed (a step takes
    ``ctx: Context[MyState]``), it is an instance of that attrs class, made
    with ``MyState()`` when the run's context is built.

    Paths are dotted (``"user.name"``) and go through dictionaries (by key) and
    attrs instances (by field).  ``edit_state()`` holds the store's lock for its
    block, so a read-modify-write inside it is atomic with respect to every
    other worker of the run; the other methods wait for such a block to end.
    The lock is reentrant for the task holding it, so a step may call ``get``
    or ``set`` inside its own ``edit_state`` block.
    """

    __slots__ = ("_lock", "_owner", "_pause", "_state", "_type", "version")

    def __init__(self, state: StateT | None = None) -> None:
        """``state``: an attrs instance (typed state), a dictionary (copied), or
        None for an empty dictionary.

        :raises TypeError: for anything else.
        """
        self._state: Any
        self._type: type[Any] | None
        if state is None or isinstance(state, dict):
            self._state = dict(state or {})
            self._type = None
        elif attrs.has(type(state)):
            self._state = state
            self._type = type(state)
        else:
            raise TypeError(
                f"a StateStore holds a dict or an attrs instance, not {type(state).__name__}"
            )
        self._lock: anyio.Lock | None = None
        self._owner: object = None
        self._pause: Callable[[], Awaitable[object]] | None = None
        """Awaited before each use, when a simulator schedules the run's steps."""
        self.version = 0
        """Counts the changes (and ``edit_state`` blocks), so a journal writes
        a snapshot only when the state may have changed."""

    @property
    def state_type(self) -> type[Any] | None:
        """The state class of a typed store; None for a dictionary store."""
        return self._type

    @asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        if self._pause is not None:
            await self._pause()
        me = anyio.get_current_task().id
        if self._owner == me:
            yield
            return
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            self._owner = me
            try:
                yield
            finally:
                self._owner = None

    async def get(self, path: str, default: Any = _MISSING) -> Any:
        """The value at ``path``, or ``default``.

        :raises KeyError: if there is no value and no default was given.
        :raises AttributeError: if the path names something that is not a field
            of an attrs class (whether or not a default was given: a field
            always has a value, so this is a misspelt path).
        """
        async with self._locked():
            node: Any = self._state
            for part in path.split("."):
                if isinstance(node, dict):
                    if part in node:
                        node = node[part]
                        continue
                elif (fields := _fields(node)) is not None:
                    if part not in fields:
                        raise _no_field(node, part, path)
                    node = getattr(node, part)
                    continue
                if default is _MISSING:
                    raise KeyError(
                        f"the run's store has no value at {path!r}: set it first, "
                        "or pass default=... to get()"
                    )
                return default
            return node

    async def set(self, path: str, value: Any) -> None:
        """Store ``value`` at ``path``.

        Missing intermediate dictionary keys are created as dictionaries; on an
        attrs instance every part of the path must be a field.

        :raises AttributeError: if a part of the path is not a field of an attrs class.
        :raises TypeError: if the path goes through something that is neither a
            dictionary nor an attrs instance, or the attrs instance is frozen.
        """
        async with self._locked():
            *parents, last = path.split(".")
            node: Any = self._state
            for part in parents:
                if isinstance(node, dict):
                    child = node.get(part)
                    if child is None:
                        child = node[part] = {}
                else:
                    fields = _fields(node)
                    assert fields is not None  # the root and every child are checked
                    if part not in fields:
                        raise _no_field(node, part, path)
                    child = getattr(node, part)
                if not isinstance(child, dict) and not attrs.has(type(child)):
                    raise TypeError(
                        f"cannot set {path!r}: the value at {part!r} is a "
                        f"{type(child).__name__}, not a dict or an attrs instance"
                    )
                node = child
            self.version += 1
            if isinstance(node, dict):
                node[last] = value
                return
            fields = _fields(node)
            assert fields is not None
            if last not in fields:
                raise _no_field(node, last, path)
            try:
                setattr(node, last, value)
            except attrs.exceptions.FrozenInstanceError:
                raise TypeError(
                    f"cannot set {path!r}: {type(node).__qualname__} is frozen; replace "
                    "the whole value with attrs.evolve(...), or make the class mutable"
                ) from None

    async def get_state(self) -> StateT:
        """A shallow copy of the state: its top-level fields (or keys) are yours
        to change; nested containers are shared, so change those in ``edit_state``."""
        async with self._locked():
            snapshot: StateT = copy.copy(self._state)
            return snapshot

    async def set_state(self, state: StateT) -> None:
        """Replace the whole state (a dictionary is copied).

        :raises TypeError: if ``state`` is not an instance of the store's state
            class (a dict, for an untyped store).
        """
        expected = self._type or dict
        if not isinstance(state, expected):
            raise TypeError(
                f"set_state() takes a {expected.__qualname__} (this run's state type), "
                f"not {type(state).__qualname__}"
            )
        async with self._locked():
            self._state = dict(state) if self._type is None else state
            self.version += 1

    async def clear(self) -> None:
        """Remove every value (typed: start again from the state class's defaults)."""
        async with self._locked():
            self.version += 1
            if self._type is None:
                self._state.clear()
            else:
                self._state = self._type()

    @asynccontextmanager
    async def edit_state(self) -> AsyncIterator[StateT]:
        """Hold the store for a read-modify-write; yields the state itself (the
        dictionary, or the state class's instance), to change in place."""
        async with self._locked():
            try:
                yield self._state
            finally:
                self.version += 1

    def _load(self, state: Any) -> None:
        """Put back a recorded state (a durable run's snapshot) before the run goes on."""
        self._state = dict(state) if self._type is None else state

    def to_dict(self) -> dict[str, Any]:
        """The state as a dictionary: a shallow copy of an untyped store; for
        typed state, its fields, recursively (``attrs.asdict``: nested attrs
        instances become dictionaries, tuples and sets become lists)."""
        if self._type is None:
            return dict(self._state)
        data: dict[str, Any] = attrs.asdict(self._state)
        return data
