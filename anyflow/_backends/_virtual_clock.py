"""The simulator's virtual clock for the event loop it runs in, on asyncio or
trio: step code's own timers (``anyio.sleep``, ``anyio.fail_after``) wait
for it rather than for real time."""

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


def install_virtual_clock() -> VirtualClock:
    """Put the calling task's event loop on a virtual clock, frozen until
    jumped.

    :raises RuntimeError: if it already is on one (one simulation per loop at
        a time), or if the loop is neither asyncio nor trio.
    """
    backend = current_backend()
    if backend == "asyncio":
        from ._asyncio import AsyncioVirtualClock

        return AsyncioVirtualClock()
    if backend == "trio":
        from ._trio import TrioVirtualClock

        return TrioVirtualClock()
    raise RuntimeError(f"a simulation runs on asyncio or trio, not on {backend}")
