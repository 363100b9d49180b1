"""``MemoryWorkflowStore``: the incumbent's module path for the in-memory store.

``WorkflowServer(workflow_store=MemoryWorkflowStore())`` ports as written: the
store is anyflow's ``MemoryStore`` (runs kept in memory, lost at exit).  Its
methods are anyflow's journal store's; the incumbent's handler-row methods
(``update``, ``query``) are refused with what to use instead (``delete``
is anyflow's: it removes a run).
"""

from __future__ import annotations

from typing import Any, NoReturn

from ..durable import MemoryStore

__all__ = ["ROWS", "MemoryWorkflowStore"]

ROWS = (
    "anyflow's stores keep each run's journal, not handler rows: {name}() of "
    "llama-agents-server's workflow store has no counterpart. Read runs through the "
    "server's API (GET /handlers, GET /handlers/{{id}}) or anyflow.durable's "
    "Store.list_runs()/get_run(); see docs/migration.md"
)


class MemoryWorkflowStore(MemoryStore):
    """anyflow's ``MemoryStore`` under the incumbent's name."""

    async def update(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError(ROWS.format(name="update"))

    async def query(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError(ROWS.format(name="query"))
