"""What the protocol shows of a handler, read from a run's record.

A handler's status, times, error and result come from the catalog's
``RunRecord`` and, for a finished run, its last recorded event, which never
changes once written: ``TerminalEvents`` reads it once and keeps it.  The
run book (``_runs.py``) decides which runs to describe; this module only
says how one looks on the wire.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import DurabilityError, StoreUnavailableError
from ..events import (
    Event,
    StopEvent,
    WorkflowCancelledEvent,
    WorkflowFailedEvent,
    WorkflowTimedOutEvent,
)
from ._envelope import envelope

if TYPE_CHECKING:
    from ..durable import RunCatalog, RunRecord

__all__ = [
    "STATUSES",
    "HandlerView",
    "TerminalEvents",
    "describe",
    "error_of",
    "protocol_status",
    "unrecorded",
    "utc",
]

STATUSES = ("running", "completed", "failed", "cancelled")
"""A handler's statuses, as the protocol names them."""


@attrs.frozen
class HandlerView:
    """One handler as the protocol shows it."""

    handler_id: str
    workflow_name: str
    status: str
    started_at: datetime
    updated_at: datetime | None
    completed_at: datetime | None
    error: str | None
    result: StopEvent | None
    result_unreadable: bool = False
    """The run's records could not be read back (``error`` says why)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "handler_id": self.handler_id,
            "workflow_name": self.workflow_name,
            "run_id": self.handler_id,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
            "error": self.error,
            "result": envelope(self.result) if self.result is not None else None,
            "result_unreadable": self.result_unreadable,
        }


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


def protocol_status(status: str) -> str:
    """The protocol's name for a recorded status (a timeout is a failure there)."""
    return "failed" if status == "timed_out" else status


def error_of(terminal: Event | None) -> str | None:
    """What went wrong, in words, from a run's last event (None: nothing)."""
    if isinstance(terminal, WorkflowFailedEvent):
        where = f" in step {terminal.step_name!r}" if terminal.step_name else ""
        attempts = f" after {terminal.attempts} attempt(s)" if terminal.attempts else ""
        return f"{terminal.exception_type}: {terminal.exception_message}{where}{attempts}"
    if isinstance(terminal, WorkflowTimedOutEvent):
        return f"timed out after {terminal.timeout:g}s"
    if isinstance(terminal, WorkflowCancelledEvent):
        return "cancelled"
    return None


class TerminalEvents:
    """The last event of each finished run (None: it is not a ``StopEvent``),
    read from the catalog once: a finished run's records never change, but
    for a purge (``forget``).  Bounded by ``keep`` runs, oldest out first."""

    def __init__(self, catalog: RunCatalog, keep: int = 10_000) -> None:
        self._catalog = catalog
        self._keep = keep
        # Oldest first.  An OrderedDict drops its oldest in constant time; a
        # dict's first key is found by stepping over the slots of those
        # dropped before it (5.2 -> 0.7 us a finished run, past ``keep``).
        self._events: OrderedDict[str, StopEvent | None] = OrderedDict()

    def __contains__(self, run_id: str) -> bool:
        """Whether the run is known here to have finished."""
        return run_id in self._events

    def remember(self, run_id: str, terminal: StopEvent | None) -> None:
        if len(self._events) >= self._keep:
            self._events.popitem(last=False)
        self._events[run_id] = terminal

    def forget(self, run_id: str) -> None:
        self._events.pop(run_id, None)

    async def of(self, run_id: str) -> StopEvent | None:
        """The finished run's last event, read back once."""
        if run_id in self._events:
            return self._events[run_id]
        records = await self._catalog.read_events(run_id)
        last = records[-1].event if records else None
        terminal = last if isinstance(last, StopEvent) else None
        self.remember(run_id, terminal)
        return terminal


async def describe(record: RunRecord, name: str, terminals: TerminalEvents) -> HandlerView:
    """The handler of the recorded run ``record``, served as ``name``.

    :raises StoreUnavailableError: if the store cannot be read now (a run
        whose records are damaged is shown with the reason instead).
    """
    status = protocol_status(record.status)
    completed_at = record.updated_at if status != "running" else None
    try:
        terminal = None if status == "running" else await terminals.of(record.run_id)
    except StoreUnavailableError:
        raise
    except DurabilityError as exc:
        # One damaged run must not hide the others: shown with the reason.
        return HandlerView(
            handler_id=record.run_id,
            workflow_name=name,
            status=status,
            started_at=record.created_at,
            updated_at=record.updated_at,
            completed_at=completed_at,
            error=f"the run's records cannot be read: {exc}",
            result=None,
            result_unreadable=True,
        )
    return HandlerView(
        handler_id=record.run_id,
        workflow_name=name,
        status=status,
        started_at=record.created_at,
        updated_at=record.updated_at,
        completed_at=completed_at,
        error=error_of(terminal) if status != "completed" else None,
        result=terminal if status == "completed" else None,
    )


def unrecorded(run_id: str, name: str, started_at: datetime) -> HandlerView:
    """The handler of a run started here and not recorded yet (a moment)."""
    return HandlerView(
        handler_id=run_id,
        workflow_name=name,
        status="running",
        started_at=started_at,
        updated_at=None,
        completed_at=None,
        error=None,
        result=None,
    )
