"""``HeldOpen``: a block held open by a task of its own, so that it may be left
from another task than the one that entered it (pytest-asyncio's fixtures
do that).  It needs to know the event loop, so it is written in
``anyflow._backends``; this module is its public name for the layers above
the engine (``anyflow.server``'s ``contextmanager()``)."""

from __future__ import annotations

from .._backends._host import HeldOpen as HeldOpen

__all__ = ["HeldOpen"]
