"""A wake-up for one waiting task, made for the event loop it runs on.

``anyio.Event`` serves any number of waiters, and pays for it on asyncio with
an ``asyncio.Event`` whose deque of waiters takes 760 bytes before anyone
waits.  A run's mailbox has one consumer, and its driver waits on it for most
of the run's life, so every run in flight would pay that.  ``Wakeup`` is the
least each loop needs to park one task and wake it: a future on asyncio, the
parked task itself on trio.  Used like an event that one task awaits once::

    waiter = Wakeup.new()
    ...             # another task (same thread): waiter.set()
    await waiter    # returns once set(); cancellable as any wait

Cancellation is the loop's own: on asyncio cancelling the task cancels the
future it waits on, on trio the wait is aborted; ``set()`` afterwards does
nothing.  Not thread-safe, as ``anyio.Event`` is not.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ._current import current_backend

if TYPE_CHECKING:
    from collections.abc import Generator

__all__ = ["Wakeup"]


class Wakeup:
    """Parks the one task that awaits it until ``set()`` (see the module)."""

    __slots__ = ()

    @staticmethod
    def new() -> Wakeup:
        """A wake-up for the event loop the calling task runs on."""
        if current_backend() == "trio":
            return _trio_class()()
        return _AsyncioWakeup()

    def set(self) -> None:
        """Wake the waiting task (or let the next await return at once)."""
        raise NotImplementedError

    def __await__(self) -> Generator[Any, None, None]:
        raise NotImplementedError


class _AsyncioWakeup(Wakeup):
    __slots__ = ("_future",)

    def __init__(self) -> None:
        self._future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def set(self) -> None:
        if not self._future.done():  # done: already set, or its waiter was cancelled
            self._future.set_result(None)

    def __await__(self) -> Generator[Any, None, None]:
        return self._future.__await__()


_TRIO: list[type[Wakeup]] = []
"""The trio class once imported (trio is imported only by a program on trio)."""


def _trio_class() -> type[Wakeup]:
    if not _TRIO:
        from ._wakeup_trio import TrioWakeup

        _TRIO.append(TrioWakeup)
    return _TRIO[0]
