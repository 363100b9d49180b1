"""Serve workflows over HTTP: ``WorkflowServer`` (``pip install 'anyflow[server]'``).

The protocol is the one of llama-agents-server, so its clients (and
``anyflow.client.WorkflowClient``) work unchanged; see docs/server.md.
"""

from __future__ import annotations

try:
    import sniffio  # noqa: F401 - imported here so that a missing one names the extra
    import starlette  # noqa: F401
except ImportError as exc:
    raise ModuleNotFoundError(
        f"anyflow.server needs the server extra ({exc.name} is missing): "
        "pip install 'anyflow[server]'",
        name=exc.name,
    ) from exc

from ._server import WorkflowServer as WorkflowServer
from .abstract_workflow_store import AbstractWorkflowStore as AbstractWorkflowStore
from .abstract_workflow_store import HandlerQuery as HandlerQuery
from .abstract_workflow_store import PersistentHandler as PersistentHandler
from .memory_workflow_store import MemoryWorkflowStore as MemoryWorkflowStore
from .sqlite_workflow_store import SqliteWorkflowStore as SqliteWorkflowStore

__all__ = [
    "AbstractWorkflowStore",
    "HandlerQuery",
    "MemoryWorkflowStore",
    "PersistentHandler",
    "SqliteWorkflowStore",
    "WorkflowServer",
]
