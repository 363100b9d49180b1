"""The run's shared state: a key-value store steps read and write."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

_MISSING: Any = object()


class StateStore:
    """Key-value state shared by a run's steps (and readable by its caller).

    Keys may be dotted paths (``"user.name"``) into nested dictionaries.
    ``edit_state()`` holds the store's lock for its block, so a read-modify-write
    inside it is atomic with respect to every other worker of the run; ``get``
    and ``set`` wait for such a block to end.  The lock is reentrant for the task
    holding it, so a step may call ``get`` inside its own ``edit_state`` block.
    """

    __slots__ = ("_data", "_lock", "_owner")

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = dict(data or {})
        self._lock: anyio.Lock | None = None
        self._owner: object = None

    @asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
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
        """
        async with self._locked():
            node: Any = self._data
            for part in path.split("."):
                if not isinstance(node, dict) or part not in node:
                    if default is _MISSING:
                        raise KeyError(
                            f"the run's store has no value at {path!r}: set it first, "
                            "or pass default=... to get()"
                        )
                    return default
                node = node[part]
            return node

    async def set(self, path: str, value: Any) -> None:
        """Store ``value`` at ``path``, creating intermediate dictionaries."""
        async with self._locked():
            *parents, last = path.split(".")
            node = self._data
            for part in parents:
                child = node.get(part)
                if not isinstance(child, dict):
                    if child is not None:
                        raise TypeError(
                            f"cannot set {path!r}: the value at {part!r} is a "
                            f"{type(child).__name__}, not a dict"
                        )
                    child = node[part] = {}
                node = child
            node[last] = value

    async def clear(self) -> None:
        """Remove every value."""
        async with self._locked():
            self._data.clear()

    @asynccontextmanager
    async def edit_state(self) -> AsyncIterator[dict[str, Any]]:
        """Hold the store for a read-modify-write; yields the state dictionary."""
        async with self._locked():
            yield self._data

    def to_dict(self) -> dict[str, Any]:
        """A shallow copy of the state."""
        return dict(self._data)
