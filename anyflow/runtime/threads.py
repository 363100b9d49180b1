"""``WorkerThread``: one thread of its own for the blocking calls of one user
(a store's database connection), waited for with the least each event loop
needs.  It needs to know the event loop, so it is written in
``anyflow._backends``; this module is its public name for the layers above
the engine (``anyflow.durable``'s SQL stores)."""

from __future__ import annotations

from .._backends._thread import WorkerThread as WorkerThread

__all__ = ["WorkerThread"]
