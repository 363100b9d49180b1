"""What the store-failure tests serve in a child process (a short store_retry,
so that a server whose store works again notices within a fraction of a second)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from anyflow.server import WorkflowServer
from tests.server.flows import Answer, Ask

if TYPE_CHECKING:
    from anyflow.durable import Store


def ask_server(store: Store) -> WorkflowServer:
    server = WorkflowServer(store, store_retry=0.2)
    server.add_workflow("ask", Ask(), additional_events=[Answer])
    return server
