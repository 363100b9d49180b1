"""A block whose body is held open by a task of its own, on asyncio.

pytest-asyncio sets an async generator fixture up in one task and tears it
down in another; a block entered in the first cannot be left in the second
when it holds a cancel scope (anyio refuses: "Attempted to exit cancel scope
in a different task than it was entered in").  ``HeldOpen`` enters the block
in a task it starts and leaves it when it is left itself, from whichever task
that is, and waits for that task to end: the block still lives exactly as
long as the ``async with`` around it.  On trio (whose plugins enter and leave
a fixture in one task) the block is entered in the caller's task.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio
import sniffio

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Callable
    from types import TracebackType

__all__ = ["HeldOpen"]

T = TypeVar("T")


class HeldOpen(Generic[T]):
    """``async with HeldOpen(factory)``: ``factory()``'s block, held open by a
    task of its own on asyncio (so it may be left from another task)."""

    def __init__(self, factory: Callable[[], contextlib.AbstractAsyncContextManager[T]]) -> None:
        self._factory = factory
        self._direct: contextlib.AbstractAsyncContextManager[T] | None = None
        self._task: asyncio.Task[None] | None = None
        self._value: Any = None
        self._error: BaseException | None = None
        self._entered = anyio.Event()
        self._leave = anyio.Event()
        self._done = anyio.Event()

    async def __aenter__(self) -> T:
        if sniffio.current_async_library() != "asyncio":
            self._direct = self._factory()
            return await self._direct.__aenter__()
        self._task = asyncio.get_running_loop().create_task(self._hold())
        try:
            await self._entered.wait()
        except BaseException:
            self._leave.set()
            with anyio.CancelScope(shield=True):
                await self._done.wait()
            raise
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self._value  # type: ignore[no-any-return]

    async def _hold(self) -> None:
        try:
            async with self._factory() as value:
                self._value = value
                self._entered.set()
                await self._leave.wait()
        except BaseException as exc:  # handed to whoever enters or leaves the block
            self._error = exc
        finally:
            self._entered.set()
            self._done.set()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._direct is not None:
            return await self._direct.__aexit__(exc_type, exc, tb)
        assert self._task is not None
        self._leave.set()
        # Shielded: the block is closed before this returns, whatever happens to the caller.
        with anyio.CancelScope(shield=True):
            await self._done.wait()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return None
