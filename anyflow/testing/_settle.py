"""Waiting until no other task can run: the simulator's moment to decide.

On trio, ``anyio.wait_all_tasks_blocked`` is trio's own, exact and immediate;
on asyncio, ``anyflow.runtime.clock.settle_if_asyncio`` does it without anyio's 0.1 s polling.
"""

from __future__ import annotations

import anyio

from ..runtime.clock import settle_if_asyncio

__all__ = ["settle"]


async def settle() -> None:
    """Return once every other task of the event loop is blocked."""
    if not await settle_if_asyncio():
        await anyio.wait_all_tasks_blocked()
