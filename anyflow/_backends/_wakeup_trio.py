"""trio's ``Wakeup`` (see ``_wakeup``): the parked task itself, rescheduled by
``set()``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from ._wakeup import Wakeup

if TYPE_CHECKING:
    from collections.abc import Generator

__all__ = ["TrioWakeup"]


class TrioWakeup(Wakeup):
    __slots__ = ("_is_set", "_task")

    def __init__(self) -> None:
        self._is_set = False
        self._task: trio.lowlevel.Task | None = None

    def set(self) -> None:
        self._is_set = True
        task, self._task = self._task, None
        if task is not None:
            trio.lowlevel.reschedule(task)

    def __await__(self) -> Generator[Any, None, None]:
        if self._is_set:
            yield from trio.lowlevel.checkpoint().__await__()  # noqa: ASYNC105 - awaited here
            return
        self._task = trio.lowlevel.current_task()
        yield from trio.lowlevel.wait_task_rescheduled(self._abort).__await__()  # noqa: ASYNC105

    def _abort(self, raise_cancel: Any) -> trio.lowlevel.Abort:
        # Cancelled while parked: a later set() must not reschedule the task.
        self._task = None
        return trio.lowlevel.Abort.SUCCEEDED
