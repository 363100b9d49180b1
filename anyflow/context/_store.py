"""The run's shared state: a ``DictState``, or an instance of the workflow's state class."""

from __future__ import annotations

import copy
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Generic, NoReturn, cast

import anyio
import attrs

from .._dict_state import DictState
from .._pydantic import dump_model, is_model, is_model_class, model_problem
from ..errors import ContextSerdeError, StateKeyError, StateTypeError

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
_ABSENT: Any = object()
"""What a path step returns when there is no value there."""


def state_class_problem(cls: type[Any]) -> str | None:
    """Why ``cls`` cannot be a workflow's state class, or None if it can.

    A state class is a mutable attrs class, or a pydantic model (when the
    program uses pydantic), with a default for every field, so that each run
    starts from ``cls()``; or ``DictState`` and its subclasses.
    """
    name = cls.__qualname__
    if issubclass(cls, dict):
        if issubclass(cls, DictState):
            return None
        return (
            f"{name} is a dict subclass; for a dictionary state take Context[DictState] "
            "(or a bare Context), or subclass DictState"
        )
    if is_model_class(cls):
        return model_problem(cls)
    if not attrs.has(cls):
        return (
            f"{name} is not an attrs class; a typed state is an attrs class with a default "
            f"for every field, e.g. `@attrs.define class {name}: count: int = 0` (or a "
            "pydantic model with a default for every field)"
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


def _field_names(node: Any) -> list[str]:
    if is_model(node):
        return list(type(node).model_fields)
    return list(attrs.fields_dict(type(node)))


def _no_field(node: Any, part: str, path: str) -> AttributeError:
    names = ", ".join(_field_names(node))
    return AttributeError(
        f"{type(node).__qualname__} has no field {part!r} (in the store path {path!r}); "
        f"its fields are: {names}"
    )


def _model_has(node: Any, part: str) -> bool:
    """Whether ``part`` names a value of the pydantic model ``node``: a field, a
    computed field, a property or an extra value."""
    cls = type(node)
    if part in cls.model_fields or part in cls.model_computed_fields:
        return True
    if isinstance(getattr(cls, part, None), property):
        return True
    extra: dict[str, Any] | None = getattr(node, "__pydantic_extra__", None)
    return extra is not None and part in extra


def _step(node: Any, part: str, path: str) -> Any:
    """The value at ``part`` of ``node``, or ``_ABSENT``.

    :raises AttributeError: if ``node`` is an attrs instance without that field.
    """
    if isinstance(node, dict):
        return node.get(part, _ABSENT)
    fields = _fields(node)
    if fields is not None:
        if part not in fields:
            raise _no_field(node, part, path)
        return getattr(node, part)
    if is_model(node):
        return getattr(node, part) if _model_has(node, part) else _ABSENT
    if isinstance(node, list | tuple):
        try:
            return node[int(part)]
        except (ValueError, IndexError):
            return _ABSENT
    if type(node).__module__ != "builtins":
        return getattr(node, part, _ABSENT)  # an object of the user's: its attribute
    return _ABSENT


def _is_container(node: Any) -> bool:
    return isinstance(node, dict | list) or attrs.has(type(node)) or is_model(node)


def _assign(node: Any, part: str, value: Any, path: str) -> None:
    """Store ``value`` at ``part`` of the container ``node``."""
    if isinstance(node, dict):
        node[part] = value
        return
    if isinstance(node, list):
        try:
            node[int(part)] = value
        except (ValueError, IndexError):
            # from None: the message says all the lookup knew
            raise IndexError(
                f"cannot set {path!r}: {part!r} is not an index of the list there "
                f"(it has {len(node)} items)"
            ) from None
        return
    if is_model(node):
        cls = type(node)
        if part not in cls.model_fields and cls.model_config.get("extra") != "allow":
            raise _no_field(node, part, path)
        setattr(node, part, value)  # a model with validate_assignment validates here
        return
    fields = _fields(node)
    assert fields is not None  # the caller checked _is_container
    if part not in fields:
        raise _no_field(node, part, path)
    try:
        setattr(node, part, value)
    except attrs.exceptions.FrozenInstanceError:
        # from None: the message says all the lookup knew
        raise TypeError(
            f"cannot set {path!r}: {type(node).__qualname__} is frozen; replace "
            "the whole value with attrs.evolve(...), or make the class mutable"
        ) from None


class StateStore(Generic[StateT]):
    """State shared by a run's steps (and readable by its caller).

    Untyped (the default), the state is a ``DictState``: a dictionary whose
    keys also read as attributes.  Typed (a step takes ``ctx: Context[MyState]``),
    it is an instance of that class, made with ``MyState()`` when the run's
    context is built: an attrs class, or a pydantic model when the program uses
    pydantic.

    Paths are dotted (``"user.name"``) and go through dictionaries (by key),
    attrs instances and pydantic models (by field), lists (by index) and other
    objects (by attribute).  ``edit_state()`` holds the store's lock for its
    block, so a read-modify-write inside it is atomic with respect to every
    other worker of the run; the other methods wait for such a block to end.
    The lock is reentrant for the task holding it, so a step may call ``get``
    or ``set`` inside its own ``edit_state`` block.
    """

    __slots__ = ("_lock", "_owner", "_pause", "_state", "_type", "version")

    def __init__(self, state: StateT | None = None) -> None:
        """``state``: an instance of the state class (typed state), a dictionary
        (copied into a ``DictState``), or None for an empty ``DictState``.

        :raises TypeError: for anything else.
        """
        self._state: Any
        self._type: type[Any] | None
        if state is None or type(state) is dict or type(state) is DictState:
            self._state = DictState(cast("dict[str, Any]", state or {}))
            self._type = None
        elif isinstance(state, DictState) or attrs.has(type(state)) or is_model(state):
            self._state = state
            self._type = type(state)
        else:
            raise TypeError(
                f"a StateStore holds a dict, a DictState, an attrs instance or a pydantic "
                f"model, not {type(state).__name__}"
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
        """The state class of a typed store; None for the default ``DictState``."""
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
        """The value at ``path``, or ``default``; the empty path is the state itself.

        :raises StateKeyError: (a ``KeyError`` and a ``ValueError``) if there is no
            value and no default was given.
        :raises AttributeError: if the path names something that is not a field
            of an attrs class (whether or not a default was given: a field
            always has a value, so this is a misspelt path).
        """
        async with self._locked():
            node: Any = self._state
            if not path:
                return node
            for part in path.split("."):
                node = _step(node, part, path)
                if node is _ABSENT:
                    if default is _MISSING:
                        raise StateKeyError(
                            f"the run's store has no value at {path!r}: set it first, "
                            "or pass default=... to get()"
                        )
                    return default
            return node

    async def set(self, path: str, value: Any) -> None:
        """Store ``value`` at ``path``.

        Missing intermediate dictionary keys are created as dictionaries; on an
        attrs instance or a pydantic model every part of the path must be a
        field (a pydantic model that validates assignments validates ``value``).

        :raises AttributeError: if a part of the path is not a field of an attrs
            class or a pydantic model.
        :raises TypeError: if the path goes through something that is not a
            container (a dictionary, a list, an attrs instance or a pydantic
            model), or the attrs instance is frozen.
        :raises ValueError: for an empty path.
        """
        if not path:
            raise ValueError("set() needs a path; to replace the whole state use set_state()")
        async with self._locked():
            *parents, last = path.split(".")
            node: Any = self._state
            for part in parents:
                child = _step(node, part, path)
                if isinstance(node, dict) and (child is _ABSENT or child is None):
                    child = node[part] = {}
                elif child is _ABSENT:
                    if is_model(node):
                        raise _no_field(node, part, path)
                    raise TypeError(
                        f"cannot set {path!r}: there is no value at {part!r} to go through"
                    )
                if not _is_container(child):
                    raise TypeError(
                        f"cannot set {path!r}: the value at {part!r} is a "
                        f"{type(child).__name__}, not a dict or an attrs instance"
                    )
                node = child
            self.version += 1
            _assign(node, last, value, path)

    async def get_state(self) -> StateT:
        """A shallow copy of the state: its top-level fields (or keys) are yours
        to change; nested containers are shared, so change those in ``edit_state``."""
        async with self._locked():
            snapshot: StateT = copy.copy(self._state)
            return snapshot

    async def set_state(self, state: StateT) -> None:
        """Replace the whole state (a dictionary is copied).

        For a pydantic state, an instance of a parent class of the state class
        is merged in instead: its fields replace those of the current state,
        and the fields only the state class has keep their values.

        :raises StateTypeError: (a ``TypeError`` and a ``ValueError``) if
            ``state`` is not an instance of the store's state class (a dict, for
            an untyped store).
        """
        expected = self._type or dict
        merge = (
            not isinstance(state, expected)
            and is_model(state)
            and isinstance(self._state, type(state))
        )
        if not isinstance(state, expected) and not merge:
            parent = " or, for a pydantic state, a parent type" if is_model(self._state) else ""
            raise StateTypeError(
                f"State must be of type {expected.__qualname__} (this run's state "
                f"type){parent}; set_state() got a {type(state).__qualname__}"
            )
        async with self._locked():
            new: Any = state
            if merge:
                update = {name: getattr(new, name) for name in type(new).model_fields}
                self._state = self._state.model_copy(update=update)
            else:
                self._state = DictState(new) if self._type is None else new
            self.version += 1

    async def clear(self) -> None:
        """Remove every value (typed: start again from the defaults of the current
        state's class, which ``set_state`` may have made a subclass)."""
        async with self._locked():
            self.version += 1
            if self._type is None:
                self._state.clear()
            else:
                self._state = type(self._state)()

    @asynccontextmanager
    async def edit_state(self) -> AsyncIterator[StateT]:
        """Hold the store for a read-modify-write; yields the state itself (the
        ``DictState``, or the state class's instance), to change in place."""
        async with self._locked():
            try:
                yield self._state
            finally:
                self.version += 1

    @classmethod
    def from_dict(cls, data: object, serializer: object = None) -> NoReturn:
        """Refused with ``ContextSerdeError``: llama-index-workflows' state
        payloads are not anyflow's.  Restore a run's store with
        ``Context.from_dict(workflow, data)``; build one with ``StateStore(state)``."""
        raise ContextSerdeError(
            "StateStore.from_dict() reads llama-index-workflows' state payload (a serializer, "
            "type names imported from the data), which anyflow does not have: restore a "
            "saved run's store with Context.from_dict(workflow, data) (docs/serialization.md)"
        )

    def restore(self, state: StateT) -> None:
        """Put back a state recorded earlier (a journal's snapshot of this run's
        store), in place of the current one, before the run's steps use it.

        Unlike ``set_state`` this is synchronous, takes no lock and does not
        count as a change: ``version`` stays as it is, because the state is
        what was already recorded, so a journal that writes a snapshot when
        the version moves does not write it again.  A dictionary is copied
        into a ``DictState``; a typed store takes an instance of its class.

        :raises StateTypeError: (a ``TypeError`` and a ``ValueError``) if
            ``state`` is not an instance of the store's state class (a dict,
            for an untyped store).
        """
        expected = self._type or dict
        if not isinstance(state, expected):
            raise StateTypeError(
                f"restore() puts back a recorded {expected.__qualname__} (this store's state "
                f"type), not a {type(state).__qualname__}: decode the snapshot as the "
                "store's state_type first"
            )
        self._state = DictState(state) if self._type is None else state

    def to_dict(self, serializer: object = None) -> dict[str, Any]:
        """The state as a dictionary: a shallow copy of a ``DictState``; for an
        attrs state, its fields, recursively (``attrs.asdict``: nested attrs
        instances become dictionaries, tuples and sets become lists); for a
        pydantic state, ``model_dump(mode="json")`` (its own serializers apply).

        :raises ContextSerdeError: given a ``serializer``: that asks for
            llama-index-workflows' state payload, which anyflow does not have.
        """
        if serializer is not None:
            raise ContextSerdeError(
                "store.to_dict(serializer) writes llama-index-workflows' state payload (a "
                "serializer, type names imported from the data), which anyflow does not "
                "have: store.to_dict() gives the state as a dictionary, and "
                "handler.ctx.to_dict() saves a run with its store (docs/serialization.md)"
            )
        state = self._state
        if isinstance(state, dict):
            return dict(state)
        if is_model(state):
            return dump_model(state)
        data: dict[str, Any] = attrs.asdict(state)
        return data
