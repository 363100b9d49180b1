"""asyncio only: the simulator's wait until no other task can run (``testing._settle``).

anyio's ``wait_all_tasks_blocked`` on asyncio sleeps 0.1 s whenever some task
is still runnable, which would cost a simulation 0.1 s per decision; this
yields to the loop instead, as often as it takes.
"""

from __future__ import annotations

import asyncio
import math

__all__ = ["AsyncioVirtualClock", "settle_if_asyncio"]


async def settle_if_asyncio() -> bool:
    """On asyncio, return (True) once every other task is blocked; elsewhere
    return False at once."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    this = asyncio.current_task()
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0)
    while True:
        if _timer_due(loop):
            await asyncio.sleep(0)  # a timer will wake a task up: let it
            continue
        for task in asyncio.all_tasks():
            waiter = getattr(task, "_fut_waiter", None)
            if task is not this and (waiter is None or waiter.done()):
                break  # still runnable: let it run
        else:
            return True
        await asyncio.sleep(0)


def _timer_due(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether a callback of the loop is ready or a timer due: a sleep ending
    or a timeout firing, which wakes a task up at one of the loop's next turns."""
    if loop._ready:  # type: ignore[attr-defined]
        return True
    now = loop.time()
    return any(h.when() <= now and not h.cancelled() for h in loop._scheduled)  # type: ignore[attr-defined]


class AsyncioVirtualClock:
    """The running asyncio loop's clock, frozen and moved by hand (the
    simulator's virtual time, for the timers of step code: ``anyio.sleep``,
    ``fail_after``, ``asyncio.sleep``).

    ``loop.time`` is shadowed on the loop instance: every timer of the loop is
    scheduled and fired against it.  The loop never waits in real time for a
    timer while the simulator runs, because the simulator is always runnable
    until it jumps the clock to the next timer.
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        if "time" in vars(self._loop):
            raise RuntimeError("this event loop already runs on a simulation's virtual clock")
        self._now = self._loop.time()
        self._loop.time = self._time  # type: ignore[method-assign]
        # In debug mode the loop times each callback with its clock: a jump
        # of the clock inside one is no slow callback.
        self._slow = self._loop.slow_callback_duration
        self._loop.slow_callback_duration = math.inf

    def _time(self) -> float:
        return self._now

    def now(self) -> float:
        return self._now

    def next_deadline(self) -> float | None:
        """When the loop's next timer is due, if it has one."""
        pending = [h.when() for h in self._loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]
        return min(pending) if pending else None

    def jump_to(self, when: float) -> None:
        self._now = max(self._now, when)

    def close(self) -> None:
        if vars(self._loop).get("time") == self._time:
            del self._loop.time
            self._loop.slow_callback_duration = self._slow
