"""trio's waiter for ``WorkerThread`` (see ``_thread``): the parked task,
rescheduled through the run's token by the worker thread."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import outcome
import trio

from ._thread import _Waiter

if TYPE_CHECKING:
    from collections.abc import Generator

__all__ = ["TrioWaiter"]

_T = TypeVar("_T")


class TrioWaiter(_Waiter[_T]):
    __slots__ = ("_task", "_token")

    def __init__(self) -> None:
        self._task = trio.lowlevel.current_task()
        self._token = trio.lowlevel.current_trio_token()

    def settle(self, result: _T | None, error: BaseException | None) -> None:
        settled = outcome.Error(error) if error is not None else outcome.Value(result)
        self._token.run_sync_soon(trio.lowlevel.reschedule, self._task, settled)

    def __await__(self) -> Generator[Any, None, _T]:
        result: _T = yield from trio.lowlevel.wait_task_rescheduled(_abort).__await__()  # noqa: ASYNC105
        return result


def _abort(raise_cancel: Any) -> trio.lowlevel.Abort:
    # Handed to the thread: the call is waited for to its end (see _thread).
    return trio.lowlevel.Abort.FAILED
