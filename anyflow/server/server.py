"""``anyflow.server.server``: the incumbent's module path of ``WorkflowServer``."""

from __future__ import annotations

from ._server import WorkflowServer as WorkflowServer

__all__ = ["WorkflowServer"]
