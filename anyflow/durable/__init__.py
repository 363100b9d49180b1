"""Durable runs: a journal of every tick, in a store, so that a run survives
the death of its process.  See docs/durability.md for what is guaranteed."""

from __future__ import annotations

from ._catalog import LiveEventFeed as LiveEventFeed
from ._catalog import LiveRunCatalog as LiveRunCatalog
from ._catalog import RunCatalog as RunCatalog
from ._memory import MemoryStore as MemoryStore
from ._open import open_store as open_store
from ._postgres import PostgresStore as PostgresStore
from ._reading import Committed as Committed
from ._reading import LiveEvent as LiveEvent
from ._reading import StoredEvent as StoredEvent
from ._runtime import DurableRuntime as DurableRuntime
from ._sqlite import SqliteStore as SqliteStore
from ._store import Owner as Owner
from ._store import RunRecord as RunRecord
from ._store import Store as Store
from ._store import StoreDecorator as StoreDecorator

__all__ = [
    "Committed",
    "DurableRuntime",
    "LiveEvent",
    "LiveEventFeed",
    "LiveRunCatalog",
    "MemoryStore",
    "Owner",
    "PostgresStore",
    "RunCatalog",
    "RunRecord",
    "SqliteStore",
    "Store",
    "StoreDecorator",
    "StoredEvent",
    "open_store",
]
