"""Waiting until no other task can run: the simulator's moment to decide.

This module is explicitly backend-specific.  On trio, ``anyio.wait_all_tasks_blocked``
is trio's own, exact and immediate.  On asyncio, anyio's version sleeps 0.1 s
whenever some task is still runnable, which would cost a simulation 0.1 s per
decision; this one yields to the loop instead, as often as it takes.
"""

from __future__ import annotations

import asyncio

import anyio

__all__ = ["settle"]


async def settle() -> None:
    """Return once every other task of the event loop is blocked."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # not asyncio: trio
        await anyio.wait_all_tasks_blocked()
        return
    this = asyncio.current_task()
    await asyncio.sleep(0)
    while True:
        for task in asyncio.all_tasks():
            waiter = getattr(task, "_fut_waiter", None)
            if task is not this and (waiter is None or waiter.done()):
                break  # still runnable: let it run
        else:
            return
        await asyncio.sleep(0)
