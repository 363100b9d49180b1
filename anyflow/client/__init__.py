"""A typed async client of ``anyflow.server`` (``pip install 'anyflow[client]'``).

It speaks the llama-agents-server protocol, so it also talks to that server.
Runs under asyncio and trio::

    from anyflow.client import WorkflowClient

    async with WorkflowClient("http://127.0.0.1:8080") as client:
        handler = await client.run_nowait("count", count=3)
        async with client.stream_events(handler.handler_id) as stream:
            async for envelope in stream:
                print(stream.last_sequence, envelope.type, envelope.value)
"""

from __future__ import annotations

try:
    import httpx  # noqa: F401 - imported here so that a missing one names the extra
except ImportError as exc:
    raise ModuleNotFoundError(
        f"anyflow.client needs the client extra ({exc.name} is missing): "
        "pip install 'anyflow[client]'",
        name=exc.name,
    ) from exc

from ._client import AuthError as AuthError
from ._client import BadRequestError as BadRequestError
from ._client import ConflictError as ConflictError
from ._client import ConnectionFailedError as ConnectionFailedError
from ._client import EventEnvelope as EventEnvelope
from ._client import EventStream as EventStream
from ._client import Handler as Handler
from ._client import NotFoundError as NotFoundError
from ._client import RunFailedError as RunFailedError
from ._client import ServerError as ServerError
from ._client import Status as Status
from ._client import UnknownEventError as UnknownEventError
from ._client import WorkflowClient as WorkflowClient
from ._client import WorkflowClientError as WorkflowClientError
from ._client import WorkflowGraphInfo as WorkflowGraphInfo
from ._client import WorkflowSchema as WorkflowSchema

__all__ = [
    "AuthError",
    "BadRequestError",
    "ConflictError",
    "ConnectionFailedError",
    "EventEnvelope",
    "EventStream",
    "Handler",
    "NotFoundError",
    "RunFailedError",
    "ServerError",
    "Status",
    "UnknownEventError",
    "WorkflowClient",
    "WorkflowClientError",
    "WorkflowGraphInfo",
    "WorkflowSchema",
]
