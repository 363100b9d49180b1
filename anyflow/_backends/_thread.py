"""``WorkerThread``: one OS thread for the blocking calls of one user (a
store's database connection), and the least each event loop needs to wait
for one of them.

``anyio.to_thread.run_sync`` serves any caller from a shared pool, and pays
for it at every call: a checkpoint, a capacity limiter (another checkpoint),
a cancel scope, a pool lookup, and on asyncio a future settled through the
loop's self-pipe, three turns of the loop in all, ~60 us of the loop
thread's CPU here.  A store calls its database once or twice per run, in
order, from one connection: its own thread, a queue, and a wake-up that the
thread hands back through the loop (a future on asyncio, the parked task on
trio) take one turn of the loop, ~25 us.

A call, once handed to the thread, is waited for to its end, as
``anyio.to_thread.run_sync`` does (``abandon_on_cancel=False``): the caller
gets what it returned, and a cancellation at its next checkpoint, so a caller
never leaves while its write may still commit.  A caller cancelled before handing it over does not
hand it over.  The thread ends when it has had nothing to do for ``idle``
seconds (a new one starts with the next call) or at ``close()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
import weakref
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio
import anyio.lowlevel

from ._current import current_backend

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

__all__ = ["IDLE_SECONDS", "WorkerThread"]

_T = TypeVar("_T")

IDLE_SECONDS = 10.0
"""How long a worker thread waits for its next call before it ends, by default."""


class WorkerThread:
    """Runs the blocking calls it is given in one thread of its own, one at a
    time, in the order they came (see the module)."""

    __slots__ = ("__weakref__", "_idle", "_lock", "_name", "_queue", "_running")

    def __init__(self, name: str, *, idle: float = IDLE_SECONDS) -> None:
        self._name = name
        self._idle = idle
        self._reset()
        _ALL.add(self)

    def _reset(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], _Waiter[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        """Held to hand a call over and by a thread deciding to end, so that
        no call is left in the queue without a thread."""
        self._running = False

    async def run(self, fn: Callable[[], _T]) -> _T:
        """``fn()``, called in the thread; what it returns or raises."""
        await anyio.lowlevel.checkpoint_if_cancelled()
        with anyio.CancelScope(shield=True):
            waiter: _Waiter[_T] = _Waiter.new()
            with self._lock:
                self._queue.put((fn, waiter))
                if not self._running:
                    self._running = True
                    threading.Thread(target=self._serve, name=self._name, daemon=True).start()
            result = await waiter
        return result

    def close(self) -> None:
        """End the thread once the calls handed over before have run."""
        with self._lock:
            if self._running:
                self._queue.put(None)

    def _serve(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self._idle)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._running = False
                        return
                continue
            if item is None:
                with self._lock:
                    if self._queue.empty():
                        self._running = False
                        return
                continue  # calls came after close(): they run
            fn, waiter = item
            result: Any = None
            error: BaseException | None = None
            try:
                result = fn()
            except BaseException as exc:  # handed to the caller, who raises it
                error = exc
            with contextlib.suppress(RuntimeError):  # its loop has closed: nobody waits
                waiter.settle(result, error)


_ALL: weakref.WeakSet[WorkerThread] = weakref.WeakSet()


def _after_fork() -> None:
    # A child process has none of its parent's threads: the next call starts one.
    for worker in list(_ALL):
        worker._reset()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork)


class _Waiter(Generic[_T]):
    """The caller's side of one call: settled from the thread, awaited once."""

    __slots__ = ()

    @staticmethod
    def new() -> _Waiter[_T]:
        if current_backend() == "trio":
            return _trio_class()()
        return _AsyncioWaiter()

    def settle(self, result: _T | None, error: BaseException | None) -> None:
        """From the worker thread: the call returned ``result`` or raised ``error``."""
        raise NotImplementedError

    def __await__(self) -> Generator[Any, None, _T]:
        raise NotImplementedError


class _AsyncioWaiter(_Waiter[_T]):
    __slots__ = ("_future", "_loop")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._future: asyncio.Future[_T] = self._loop.create_future()

    def settle(self, result: _T | None, error: BaseException | None) -> None:
        self._loop.call_soon_threadsafe(self._set, result, error)

    def _set(self, result: Any, error: BaseException | None) -> None:
        if self._future.done():  # cancelled by asyncio itself, not through anyio
            return
        if error is not None:
            self._future.set_exception(error)
        else:
            self._future.set_result(result)

    def __await__(self) -> Generator[Any, None, _T]:
        return self._future.__await__()


_TRIO: list[type[_Waiter[Any]]] = []
"""The trio class once imported (trio is imported only by a program on trio)."""


def _trio_class() -> type[_Waiter[Any]]:
    if not _TRIO:
        from ._thread_trio import TrioWaiter

        _TRIO.append(TrioWaiter)
    return _TRIO[0]
