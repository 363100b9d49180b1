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

from ._client import WorkflowClient as WorkflowClient
from ._errors import AuthError as AuthError
from ._errors import BadRequestError as BadRequestError
from ._errors import ConflictError as ConflictError
from ._errors import ConnectionFailedError as ConnectionFailedError
from ._errors import NotFoundError as NotFoundError
from ._errors import RunFailedError as RunFailedError
from ._errors import ServerError as ServerError
from ._errors import UnknownEventError as UnknownEventError
from ._errors import WorkflowClientError as WorkflowClientError
from ._models import EventEnvelope as EventEnvelope
from ._models import Handler as Handler
from ._models import Status as Status
from ._models import WorkflowGraphInfo as WorkflowGraphInfo
from ._models import WorkflowSchema as WorkflowSchema
from ._stream import EventStream as EventStream

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
