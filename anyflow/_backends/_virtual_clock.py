"""Virtual time for the event loop the calling task runs on, asyncio or
trio: the timers of every task on the loop (``anyio.sleep``,
``anyio.fail_after``, a run's timeouts and retry delays) are due on a clock
that moves when it is told to, or by itself whenever every task waits."""

from __future__ import annotations

from typing import Protocol

from ._current import current_backend

__all__ = ["VirtualClock", "install_virtual_clock"]


class VirtualClock(Protocol):
    def now(self) -> float:
        """The loop's time, in the loop's units (seconds, from an origin of its own)."""
        ...

    def next_deadline(self) -> float | None:
        """When the loop's next timer is due, if it has one."""
        ...

    def jump_to(self, when: float) -> None:
        """Move the clock forward to ``when``: the timers due then fire."""
        ...

    def close(self) -> None:
        """Give the loop its own clock back."""
        ...


def install_virtual_clock(*, autojump: bool = False) -> VirtualClock:
    """Put the calling task's event loop on a virtual clock.

    It starts at the loop's time rounded up to a whole second (deadlines set
    before keep their meaning) and moves only forward.

    :param autojump: False (the simulator's): the clock stands still until
        ``jump_to``.  True: it also jumps by itself to the loop's next timer
        whenever no task can run, as trio's ``MockClock(autojump_threshold=0)``
        does, on asyncio too; a task waiting on I/O or a thread counts as
        waiting.
    :raises RuntimeError: if the loop already is on one (one at a time), or
        if it is neither asyncio nor trio (or, with ``autojump``, an asyncio
        loop without a selector).
    """
    backend = current_backend()
    if backend == "asyncio":
        from ._asyncio import AsyncioVirtualClock

        return AsyncioVirtualClock(autojump=autojump)
    if backend == "trio":
        from ._trio import TrioVirtualClock

        return TrioVirtualClock(autojump=autojump)
    raise RuntimeError(
        f"virtual time needs a running asyncio or trio event loop, not {backend or 'none'}"
    )
