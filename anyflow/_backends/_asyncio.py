"""asyncio only: the simulator's wait until no other task can run
(``testing._settle``), and virtual time on an asyncio loop.

anyio's ``wait_all_tasks_blocked`` on asyncio sleeps 0.1 s whenever some task
is still runnable, which would cost a simulation 0.1 s per decision; this
yields to the loop instead, as often as it takes.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

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
    """The running asyncio loop's clock, made virtual: the timers of all
    code on the loop (``anyio.sleep``, ``fail_after``, ``asyncio.sleep``, the
    run's own timers) are due on it.

    ``loop.time`` is shadowed on the loop instance: every timer of the loop is
    scheduled and fired against it.  It starts at the loop's time rounded up
    to a whole second, so that deadlines of whole seconds from it are exact.

    Without ``autojump`` (the simulator's) it moves only by ``jump_to``; the
    loop never waits in real time for a timer while the simulator runs,
    because the simulator is always runnable until it jumps the clock.  With
    ``autojump`` it also moves by itself: the loop's selector is seen through
    a proxy, and where the loop would wait for its next timer with no
    callback ready and no I/O ready, the clock jumps to that timer instead.
    """

    def __init__(self, *, autojump: bool = False) -> None:
        self._loop = asyncio.get_running_loop()
        if "time" in vars(self._loop):
            raise RuntimeError("this event loop already runs on virtual time")
        selector = getattr(self._loop, "_selector", None)
        if autojump and not callable(getattr(selector, "select", None)):
            raise RuntimeError(
                f"virtual time that moves by itself needs asyncio's selector event loop, "
                f"not {type(self._loop).__name__}"
            )
        self._now = float(math.ceil(self._loop.time()))
        self._loop.time = self._time  # type: ignore[method-assign]
        # In debug mode the loop times each callback with its clock: a jump
        # of the clock inside one is no slow callback.
        self._slow = self._loop.slow_callback_duration
        self._loop.slow_callback_duration = math.inf
        self._selector: _AutojumpSelector | None = None
        if autojump:
            self._selector = _AutojumpSelector(selector, self)
            self._loop._selector = self._selector  # type: ignore[attr-defined]

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
        if self._selector is not None and self._loop._selector is self._selector:  # type: ignore[attr-defined]
            self._loop._selector = self._selector.inner  # type: ignore[attr-defined]


class _AutojumpSelector:
    """The loop's selector, for an autojumping clock: a wait for the next
    timer that would find nothing to do becomes a jump of the clock to it.

    ``BaseEventLoop._run_once`` calls ``select(timeout)`` with a timeout > 0
    only when no callback is ready and a timer is due later (None when there
    is no timer: then it waits for I/O, a thread or a signal, in real time).
    """

    def __init__(self, inner: Any, clock: AsyncioVirtualClock) -> None:
        self.inner = inner
        self._clock = clock

    def select(self, timeout: float | None = None) -> Any:
        if timeout is None or timeout <= 0:
            return self.inner.select(timeout)
        events = self.inner.select(0)
        if not events:
            scheduled = self._clock._loop._scheduled  # type: ignore[attr-defined]
            if scheduled:
                self._clock.jump_to(scheduled[0].when())
        return events

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
