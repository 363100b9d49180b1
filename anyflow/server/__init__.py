"""Serve workflows over HTTP: ``WorkflowServer`` (``pip install 'anyflow[server]'``).

The protocol is the one of llama-agents-server, so its clients (and
``anyflow.client.WorkflowClient``) work unchanged; see docs/server.md.
"""

from __future__ import annotations

from ._server import WorkflowServer as WorkflowServer

__all__ = ["WorkflowServer"]
