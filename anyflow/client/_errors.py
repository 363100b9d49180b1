"""What ``WorkflowClient`` raises, and which error an HTTP answer becomes.

One tree, drawn in ``WorkflowClientError``'s docstring, so a caller can catch
one base or one cause; ``error_for`` is the one place that maps a refused
answer's status to its class, for the client's reads and its event streams
alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import AnyflowError

if TYPE_CHECKING:
    import httpx

    from ._models import Handler

__all__ = [
    "AuthError",
    "BadRequestError",
    "ConflictError",
    "ConnectionFailedError",
    "NotFoundError",
    "RunFailedError",
    "ServerError",
    "UnknownEventError",
    "WorkflowClientError",
    "error_for",
]


class WorkflowClientError(AnyflowError):
    """Base of what ``WorkflowClient`` raises: the server refused a request
    (``status`` is the HTTP status), or gave no usable answer (``status`` is None).

    Our exception hierarchy::

        WorkflowClientError
        ├── BadRequestError        400: the request cannot be read (the detail says why)
        ├── AuthError              401/403: no token, or the wrong one
        ├── NotFoundError          404: no such workflow or handler (also a LookupError)
        ├── ConflictError          409: the request does not fit the handler's state
        ├── ServerError            5xx: the server failed (its log has the details)
        ├── RunFailedError         a blocking run ended failed or cancelled (.handler)
        ├── ConnectionFailedError  no answer: refused, dropped, timed out (a ConnectionError)
        └── UnknownEventError      EventEnvelope.to_event() got no class of that name
    """

    def __init__(
        self, message: str, *, status: int | None = None, detail: str | None = None
    ) -> None:
        super().__init__(message)
        self.detail = message if detail is None else detail
        """The server's ``detail`` message, or what went wrong on the client's side."""
        self.status = status
        """The HTTP status, or None when there was no (usable) response."""


class BadRequestError(WorkflowClientError):
    """400: the server could not read the request (a body, a parameter, an event)."""


class AuthError(WorkflowClientError):
    """401 or 403: the server needs a token (``WorkflowClient(token=...)``)."""


class NotFoundError(WorkflowClientError, LookupError):
    """404: no workflow or handler by that name."""


class ConflictError(WorkflowClientError):
    """409: the handler's state forbids it (finished, or the id is taken)."""


class ServerError(WorkflowClientError):
    """A 5xx that is not a run's own failure: a bug or an overloaded server."""


class ConnectionFailedError(WorkflowClientError, ConnectionError):
    """The server could not be reached, or the connection failed mid-answer
    (after ``max_reconnects`` attempts, for an event stream)."""


class UnknownEventError(WorkflowClientError, LookupError):
    """``EventEnvelope.to_event()`` was given no class for the envelope's type."""


class RunFailedError(WorkflowClientError):
    """A run waited on by ``WorkflowClient.run()`` failed or was cancelled."""

    def __init__(self, handler: Handler) -> None:
        super().__init__(
            f"run {handler.handler_id!r} of {handler.workflow_name!r} {handler.status}: "
            f"{handler.error or 'no error recorded'}",
            status=500,
        )
        self.handler = handler
        """The run's handler: its ``status`` and ``error`` say how it ended."""


def error_for(response: httpx.Response) -> WorkflowClientError:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if not isinstance(detail, str):
        detail = response.text[:200] or response.reason_phrase
    request = response.request
    message = f"{detail} (HTTP {response.status_code} from {request.method} {request.url.path})"
    status = response.status_code
    kind: type[WorkflowClientError] = {
        400: BadRequestError,
        401: AuthError,
        403: AuthError,
        404: NotFoundError,
        409: ConflictError,
    }.get(status, ServerError if status >= 500 else WorkflowClientError)
    return kind(message, status=status, detail=detail)
