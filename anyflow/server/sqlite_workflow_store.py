"""``SqliteWorkflowStore``: the incumbent's name for a SQLite store.

``WorkflowServer(workflow_store=SqliteWorkflowStore("runs.db"))`` ports as
written: the store is anyflow's ``SqliteStore`` (each run's journal in one
SQLite file, resumed after a restart).  The incumbent's handler-row methods
(``update``, ``query``) are refused with what to use instead.
"""

from __future__ import annotations

from typing import Any, NoReturn

from ..durable import SqliteStore
from .memory_workflow_store import ROWS

__all__ = ["SqliteWorkflowStore"]


class SqliteWorkflowStore(SqliteStore):
    """anyflow's ``SqliteStore`` under the incumbent's name."""

    async def update(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError(ROWS.format(name="update"))

    async def query(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError(ROWS.format(name="query"))
