"""What a request about a run is refused with.

The run book (``_runs``) raises these and the routes answer each with one
HTTP status, so that the book speaks no HTTP.
"""

from __future__ import annotations

__all__ = ["Conflict", "Finished", "NotDelivered", "NotFound"]


class NotFound(LookupError):
    """No handler, or no workflow, by that name (a 404)."""


class Conflict(RuntimeError):
    """The request does not fit the handler's state (a 409)."""


class Finished(Conflict):
    """The handler's run has finished."""


class NotDelivered(RuntimeError):
    """An event was accepted by the handler but the runtime could not deliver
    it (a DBOS follower's message refused, or its run not found): nothing was
    recorded, so the sender may send it again (a 503)."""
