"""The incumbent's workflow-store module path, for imports that port by ``sed``.

llama-agents-server keeps one row per handler (``PersistentHandler``) that a
store updates and queries (``HandlerQuery``); anyflow's stores keep each run's
journal instead (``anyflow.durable.Store``), and the server derives handlers
from it.  So these names import, and using them fails at once, saying what to
write for anyflow: a program seeding or querying handler rows has no
counterpart to port to silently.
"""

from __future__ import annotations

from typing import Any, NoReturn

from .memory_workflow_store import ROWS

__all__ = ["AbstractWorkflowStore", "HandlerQuery", "PersistentHandler"]

_STORE = (
    "llama-agents-server's AbstractWorkflowStore (handler rows) has no counterpart in "
    "anyflow: a store records each run's journal; implement anyflow.durable.Store, or use "
    "MemoryStore, SqliteStore or PostgresStore (docs/migration.md)"
)


class _Refused:
    _what = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(ROWS.format(name=self._what))


class PersistentHandler(_Refused):
    """Refused: anyflow records runs' journals, not handler rows."""

    _what = "PersistentHandler"


class HandlerQuery(_Refused):
    """Refused: query runs with ``GET /handlers`` or ``Store.list_runs()``."""

    _what = "HandlerQuery"


class AbstractWorkflowStore:
    """Refused as a base class: subclass ``anyflow.durable.Store`` instead."""

    def __init_subclass__(cls, **kwargs: Any) -> NoReturn:
        raise TypeError(f"{cls.__qualname__}: {_STORE}")

    def __init__(self) -> None:
        raise TypeError(_STORE)
