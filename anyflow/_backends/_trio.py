"""trio only: virtual time on a trio run that is already going."""

from __future__ import annotations

import math
import weakref

import trio
from trio.testing import MockClock

__all__ = ["TrioVirtualClock"]

_ours: weakref.WeakSet[MockClock] = weakref.WeakSet()
"""The clocks this module put on a run: a second one is refused."""


class TrioVirtualClock:
    """The running trio loop's clock, made virtual: the timers of all code on
    the loop (``anyio.sleep``, ``fail_after``, ``trio.sleep``, the run's own
    timers) are due on it.

    trio takes its clock as an argument of ``trio.run``; a test's loop is
    already running, so this replaces the run's clock with a
    ``trio.testing.MockClock`` for as long as the virtual time lasts (through
    trio's runner, which trio does not make public: checked at install, with a
    clear error if a trio release changes it).  It starts at the time the
    replaced clock shows, rounded up to a whole second, so the deadlines
    already set keep their meaning and deadlines of whole seconds from it are
    exact.  Without ``autojump`` (the simulator's) it moves only by
    ``jump_to``; with it, also by itself, as trio's ``MockClock`` with
    ``autojump_threshold=0`` does: to the next deadline, whenever no task can
    run (and none waits in ``wait_all_tasks_blocked``).
    """

    def __init__(self, *, autojump: bool = False) -> None:
        try:
            runner = trio._core._run.GLOBAL_RUN_CONTEXT.runner
            replaced = runner.clock
            threshold = runner.clock_autojump_threshold
            runner.deadlines.next_deadline  # noqa: B018 - checked to exist
        except AttributeError as exc:  # pragma: no cover - a trio release changed it
            raise RuntimeError(
                f"trio {trio.__version__} does not let anyflow replace the run's clock; "
                "use virtual time on asyncio, or a trio release anyflow supports"
            ) from exc
        if replaced in _ours:
            raise RuntimeError("this event loop already runs on virtual time")
        self._runner = runner
        self._replaced = replaced
        self._threshold = threshold
        self._clock = MockClock()
        self._clock.jump(math.ceil(replaced.current_time()))
        _ours.add(self._clock)
        runner.clock = self._clock
        if autojump:
            # MockClock tells the runner its threshold once it is the run's clock.
            self._clock.autojump_threshold = 0

    def now(self) -> float:
        return self._clock.current_time()

    def next_deadline(self) -> float | None:
        """When the loop's next cancel scope deadline (a sleep, a timeout) is due."""
        deadline: float = self._runner.deadlines.next_deadline()
        return None if math.isinf(deadline) else deadline

    def jump_to(self, when: float) -> None:
        now = self._clock.current_time()
        if when > now:
            self._clock.jump(when - now)

    def close(self) -> None:
        if self._runner.clock is self._clock:
            self._runner.clock = self._replaced
            self._runner.clock_autojump_threshold = self._threshold
