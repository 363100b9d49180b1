"""Which event loop the calling thread runs, if any."""

from __future__ import annotations

import asyncio
import sys

__all__ = ["current_backend"]


def current_backend() -> str | None:
    """``"asyncio"`` or ``"trio"`` when called from code running on that loop
    (in this thread); None from plain synchronous code."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return "asyncio"
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            pass
        else:
            return "trio"
    return None
