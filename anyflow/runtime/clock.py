"""Virtual time on the running event loop, for the simulator and tests.

``install_virtual_clock()`` puts a ``VirtualClock`` on the loop (asyncio or
trio) so that step code's own timers (``anyio.sleep``, ``anyio.fail_after``)
wait for it rather than for real time; ``settle_if_asyncio()`` waits, on
asyncio, until no other task can run, the moment at which virtual time may move
on (on trio, ``anyio.wait_all_tasks_blocked`` does it exactly).

Both must know which event loop they run on, so they are written in
``anyflow._backends``; this module is their public name for the layers above
the engine (``anyflow.testing``) and for users' own harnesses.
"""

from __future__ import annotations

from .._backends._asyncio import settle_if_asyncio as settle_if_asyncio
from .._backends._virtual_clock import VirtualClock as VirtualClock
from .._backends._virtual_clock import install_virtual_clock as install_virtual_clock

__all__ = ["VirtualClock", "install_virtual_clock", "settle_if_asyncio"]
