"""``DBOSRunCatalog``: the runs recorded in DBOS, and their events, read back.

``DBOSRuntime`` answers ``anyflow.durable.RunCatalog``'s questions from here.
A run is a DBOS workflow named ``anyflow.run``: its status gives the run's
record (``RunRecord``), its ``anyflow.record`` steps and its result give the
run's events, numbered in order (see ``_run`` for the records' shape).
"""

from __future__ import annotations

import json
from collections import deque
from typing import TYPE_CHECKING, Any

import anyio
from dbos import DBOS

from ..durable import RunRecord, StoredEvent
from ..errors import DurabilityError
from . import _bridge
from ._bridge import FINISHED
from ._records import Batch, read_end, read_step
from ._run import decode_events

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..events import Event
    from ..runtime.vocabulary import Outcome
    from ._run import DBOSJournal

__all__ = ["DBOSRunCatalog", "EventStream", "RecordReader"]

_WAITING = frozenset({"PENDING", "ENQUEUED", "DELAYED"})


class DBOSRunCatalog:
    """The recorded runs of the application (the same questions
    ``DurableRuntime`` answers from its store).

    :param active: the runs executing in this process, by id (a reader of
        one of them wakes at its next record instead of polling).
    """

    __slots__ = ("_active", "poll_interval")

    def __init__(self, active: Mapping[str, DBOSJournal], poll_interval: float) -> None:
        self._active = active
        self.poll_interval = poll_interval

    async def get_run(self, run_id: str) -> RunRecord | None:
        status = await DBOS.get_workflow_status_async(run_id)
        if status is None or status.name != _bridge.RUN:
            return None
        return _run_record(status)

    async def list_runs(
        self, *, workflow: str | None = None, status: str | None = None
    ) -> list[RunRecord]:
        found = await DBOS.list_workflows_async(name=_bridge.RUN, load_output=True)
        records = [_run_record(s) for s in found]
        return [
            r
            for r in records
            if (workflow is None or r.workflow == workflow)
            and (status is None or r.status == status)
        ]

    async def read_events(
        self, run_id: str, after: int = -1, limit: int | None = None
    ) -> list[StoredEvent]:
        events = [e for e in await self.reader(run_id).read() if e.seq > after]
        return events if limit is None else events[:limit]

    def events(self, run_id: str, after: int = -1) -> EventStream:
        return EventStream(self.reader(run_id), after)

    async def delete_run(self, run_id: str) -> None:
        await DBOS.delete_workflow_async(run_id)

    def reader(self, run_id: str) -> RecordReader:
        """A reader of the run's events, from its first."""
        return RecordReader(self, run_id)

    async def wait(self, run_id: str) -> None:
        """Until the run may have more recorded: its next record, if it
        executes in this process, else ``poll_interval``."""
        local = self._active.get(run_id)
        if local is not None and not local.ended:
            with anyio.move_on_after(self.poll_interval):
                await local.next_change().wait()
        else:
            await anyio.sleep(self.poll_interval)


class RecordReader:
    """Reads a run's events from its DBOS record, from where it left off: the
    events of each recorded batch in order, then those of the run's result."""

    __slots__ = ("_catalog", "_offset", "next_seq", "outcome", "run_id", "status")

    def __init__(self, catalog: DBOSRunCatalog, run_id: str) -> None:
        self._catalog = catalog
        self.run_id = run_id
        self._offset = 0
        self.next_seq = 0
        self.status: Any = None
        """DBOS's status of the run at the last read (None: no such run)."""
        self.outcome: Outcome | None = None
        """Set once the run's end has been read."""

    async def read(self) -> list[StoredEvent]:
        """The events recorded since the last read."""
        if self.outcome is not None:
            return []
        run_id = self.run_id
        # The status first: a finished run has all its steps recorded.
        self.status = status = await DBOS.get_workflow_status_async(run_id)
        steps = await DBOS.list_workflow_steps_async(run_id, offset=self._offset)
        found: list[StoredEvent] = []
        for step in steps:
            self._offset += 1
            text = step["output"]
            if step["function_name"] != _bridge.RECORD or text is None:
                continue
            record = read_step(text, run_id, self._offset)
            if isinstance(record, Batch):
                found.extend(self._number(decode_events(record.e, run_id, self._offset)))
        if status is not None and status.status in FINISHED:
            if status.status != "SUCCESS" or not isinstance(status.output, str):
                raise DurabilityError(
                    f"the DBOS workflow of run {run_id!r} ended as {status.status} without "
                    "an outcome: it was cancelled or failed outside anyflow"
                )
            end = read_end(status.output, run_id)
            found.extend(self._number(decode_events(end.e, run_id, self._offset)))
            self.outcome = end.o
        return found

    def _number(self, events: list[Event]) -> list[StoredEvent]:
        numbered = [StoredEvent(self.next_seq + i, event) for i, event in enumerate(events)]
        self.next_seq += len(events)
        return numbered

    async def wait(self) -> None:
        """Until there may be more to read."""
        await self._catalog.wait(self.run_id)


class EventStream:
    """``DBOSRuntime.events()``: a plain async iterator, so a consumer may
    break out of its loop without leaving a generator to finalize."""

    __slots__ = ("_after", "_buffer", "_reader")

    def __init__(self, reader: RecordReader, after: int) -> None:
        self._reader = reader
        self._after = after
        self._buffer: deque[StoredEvent] = deque()

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> StoredEvent:
        reader = self._reader
        while not self._buffer:
            if reader.outcome is not None:
                raise StopAsyncIteration
            self._buffer.extend(e for e in await reader.read() if e.seq > self._after)
            if reader.status is None:
                raise DurabilityError(f"no run {reader.run_id!r} is recorded")
            if not self._buffer and reader.outcome is None:
                await reader.wait()
        return self._buffer.popleft()


def _run_status(status: Any) -> str:
    """An anyflow run status (``RunRecord.status``) from DBOS's."""
    if status.status in _WAITING:
        return "running"
    if status.status == "SUCCESS" and isinstance(status.output, str):
        try:  # only the status of End.o: reading the End would decode its events
            return str(json.loads(status.output.partition(":")[2])["o"]["status"])
        except (ValueError, KeyError, TypeError):
            return "failed"
    return "cancelled" if status.status == "CANCELLED" else "failed"


def _run_record(status: Any) -> RunRecord:
    workflow = status.input["args"][1] if status.input else ""
    created = (status.created_at or 0) / 1000
    return RunRecord.from_row(
        status.workflow_id,
        str(workflow),
        _run_status(status),
        created,
        (status.updated_at or status.created_at or 0) / 1000,
    )
