"""Virtual time for a test: a run's timeouts, wait timeouts, retry delays and
step timeouts, and step code's own sleeps, take no wall time.

``with virtual_time() as clock:`` puts the event loop the test runs on (asyncio
or trio) on a virtual clock for the block (``anyflow.runtime.clock``).  The
clock jumps to the loop's next timer whenever every task waits, as trio's
``MockClock(autojump_threshold=0)`` does, so a run that times out after 30 s
does so at once, at exactly 30 s of virtual time, the same on both backends.
A runtime keeps time by the loop's clock (``BasicRuntime``, and
``DurableRuntime(wall_clock=False)``), so the reducer's timers run on it.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import anyio

from ..runtime.clock import install_virtual_clock

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..runtime.clock import VirtualClock

__all__ = ["VirtualTime", "virtual_time"]


class VirtualTime:
    """The virtual clock of a ``virtual_time()`` block."""

    __slots__ = ("_clock", "start")

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        self.start = clock.now()
        """The loop's time (``anyio.current_time()``, the ``now`` of a run's
        ticks) when the block began: a whole number of seconds."""

    def now(self) -> float:
        """Seconds of virtual time since the block began (0.0 at its start)."""
        return self._clock.now() - self.start

    async def advance(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass before returning.

        The same as ``anyio.sleep(seconds)`` in the block: the clock goes from
        timer to timer, each time every task waits, so everything the timers
        due on the way cause happens (a run times out, a retry starts) before
        this returns.
        """
        await anyio.sleep(seconds)


@contextlib.contextmanager
def virtual_time() -> Iterator[VirtualTime]:
    """Run the block on virtual time, on asyncio or trio.

    Every timer of the event loop is due on a clock that stands still while
    some task can run and jumps to the next timer as soon as every task waits:
    a run's timeout, a ``wait_for_event`` timeout, a retry delay, a step's
    timeout, ``anyio.sleep`` and ``fail_after`` in step code or in the test.
    Time passes only by those jumps, so a test of a 30 s timeout takes no wall
    time and sees it fire at exactly 30 s (``clock.now()``).

    A task waiting on a thread (a plain ``def`` step runs in one) or on real
    I/O waits too: the clock may jump while it works.  Keep such work out of
    the block, or replace it with fakes, as for ``simulate()``.

    :raises RuntimeError: if the loop already runs on virtual time (blocks do
        not nest, and a simulation has a clock of its own), or is not asyncio
        (with a selector event loop) or trio.
    """
    try:
        clock = install_virtual_clock(autojump=True)
    except RuntimeError as exc:
        raise RuntimeError(
            f"cannot start virtual time here: {exc} (virtual_time() blocks do not nest, "
            "and a simulation keeps its own time)"
        ) from exc
    try:
        yield VirtualTime(clock)
    finally:
        clock.close()
