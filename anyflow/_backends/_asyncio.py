"""asyncio only: the simulator's wait until no other task can run (``testing._settle``).

anyio's ``wait_all_tasks_blocked`` on asyncio sleeps 0.1 s whenever some task
is still runnable, which would cost a simulation 0.1 s per decision; this
yields to the loop instead, as often as it takes.
"""

from __future__ import annotations

import asyncio

__all__ = ["settle_if_asyncio"]


async def settle_if_asyncio() -> bool:
    """On asyncio, return (True) once every other task is blocked; elsewhere
    return False at once."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    this = asyncio.current_task()
    await asyncio.sleep(0)
    while True:
        for task in asyncio.all_tasks():
            waiter = getattr(task, "_fut_waiter", None)
            if task is not this and (waiter is None or waiter.done()):
                break  # still runnable: let it run
        else:
            return True
        await asyncio.sleep(0)
