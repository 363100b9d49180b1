"""Virtual time on the running event loop, for tests and the simulator.

``install_virtual_clock()`` puts a ``VirtualClock`` on the loop (asyncio or
trio) so that every timer of the loop is due on it rather than in real time:
step code's own (``anyio.sleep``, ``anyio.fail_after``) and a run's, since
``BasicRuntime`` keeps a run's time (``InternalRunAdapter.now()`` and
``sleep_until()``: its timeout, retry delays, wait and step timeouts) by the
loop's clock.  Frozen, it moves only when told (the simulator's); with
``autojump=True`` it also jumps to the next timer whenever every task waits
(``anyflow.testing.virtual_time()``).  ``settle_if_asyncio()`` waits, on
asyncio, until no other task can run, the moment at which frozen time may
move on (on trio, ``anyio.wait_all_tasks_blocked`` does it exactly).

Both must know which event loop they run on, so they are written in
``anyflow._backends``; this module is their public name for the layers above
the engine (``anyflow.testing``) and for users' own harnesses.
"""

from __future__ import annotations

from .._backends._asyncio import settle_if_asyncio as settle_if_asyncio
from .._backends._virtual_clock import VirtualClock as VirtualClock
from .._backends._virtual_clock import install_virtual_clock as install_virtual_clock

__all__ = ["VirtualClock", "install_virtual_clock", "settle_if_asyncio"]
