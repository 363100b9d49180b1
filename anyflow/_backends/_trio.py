"""trio only: the simulator's virtual clock for step code's timers."""

from __future__ import annotations

import math

import trio

__all__ = ["TrioVirtualClock"]


class TrioVirtualClock(trio.abc.Clock):
    """The running trio loop's clock, frozen and moved by hand (the
    simulator's virtual time, for the timers of step code: ``anyio.sleep``,
    ``fail_after``, ``trio.sleep``).

    trio takes its clock as an argument of ``trio.run``; a test's loop is
    already running, so this one replaces the run's clock for as long as the
    simulation lasts (through trio's runner, which trio does not make public:
    checked at install, with a clear error if a trio release changes it).  It
    starts at the time the replaced clock shows, so the deadlines already set
    keep their meaning, and it moves only when the simulator jumps it.
    """

    def __init__(self) -> None:
        try:
            runner = trio._core._run.GLOBAL_RUN_CONTEXT.runner
            replaced = runner.clock
            deadlines = runner.deadlines
            deadlines.next_deadline  # noqa: B018 - checked to exist
        except AttributeError as exc:  # pragma: no cover - a trio release changed it
            raise RuntimeError(
                f"trio {trio.__version__} does not let the simulation replace the run's "
                "clock; simulate on asyncio, or a trio release anyflow supports"
            ) from exc
        if isinstance(replaced, TrioVirtualClock):
            raise RuntimeError("this event loop already runs on a simulation's virtual clock")
        self._runner = runner
        self._replaced = replaced
        self._now = replaced.current_time()
        runner.clock = self

    def start_clock(self) -> None:
        pass

    def current_time(self) -> float:
        return self._now

    def deadline_to_sleep_time(self, deadline: float) -> float:
        # A deadline to come is reached only when the simulator jumps to it.
        return 0.0 if deadline <= self._now else math.inf

    def now(self) -> float:
        return self._now

    def next_deadline(self) -> float | None:
        """When the loop's next cancel scope deadline (a sleep, a timeout) is due."""
        deadline: float = self._runner.deadlines.next_deadline()
        return None if math.isinf(deadline) else deadline

    def jump_to(self, when: float) -> None:
        self._now = max(self._now, when)

    def close(self) -> None:
        if self._runner.clock is self:
            self._runner.clock = self._replaced
