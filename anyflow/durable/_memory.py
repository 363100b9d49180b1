"""``MemoryStore``: the store contract in a dictionary, for tests and for runs
that need the journal's guarantees within one process only."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
from anyio.lowlevel import checkpoint

from ..errors import LeaseLostError
from ._store import (
    FINISHED,
    RunRecord,
    Store,
    StoredRun,
    exists_error,
    lease_is_free,
    locked_error,
    unfinished_error,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._store import Owner

__all__ = ["MemoryStore"]


@attrs.define
class _Row:
    workflow: str
    fingerprint: str
    status: str
    created_at: float
    updated_at: float
    owner: str | None
    lease_until: float | None
    state: str | None = None
    outcome: str | None = None
    ticks: dict[int, str] = attrs.field(factory=dict)
    events: dict[int, str] = attrs.field(factory=dict)

    def record(self, run_id: str) -> RunRecord:
        return RunRecord.from_row(
            run_id, self.workflow, self.status, self.created_at, self.updated_at
        )


class MemoryStore(Store):
    """Keeps runs in this process's memory: they survive a runtime, not the process."""

    def __init__(self) -> None:
        self._runs: dict[str, _Row] = {}

    async def claim(
        self,
        run_id: str,
        workflow: str,
        fingerprint: str,
        owner: Owner,
        now: float,
        lease_until: float,
    ) -> StoredRun:
        await checkpoint()
        row = self._runs.get(run_id)
        created = row is None
        if row is None:
            row = self._runs[run_id] = _Row(
                workflow, fingerprint, "running", now, now, str(owner), lease_until
            )
        elif row.status not in FINISHED:
            if not lease_is_free(row.owner, row.lease_until, owner, now):
                assert row.owner is not None
                assert row.lease_until is not None
                raise locked_error(run_id, row.owner, row.lease_until, now)
            row.owner, row.lease_until = str(owner), lease_until
        return StoredRun(
            row.record(run_id),
            row.fingerprint,
            sorted(row.ticks.items()),
            row.state,
            row.outcome,
            len(row.events),
            created,
        )

    def _owned(self, run_id: str, owner: Owner) -> _Row:
        row = self._runs.get(run_id)
        if row is None or row.owner != str(owner) or row.status in FINISHED:
            holder = "nobody" if row is None or row.owner is None else row.owner
            raise LeaseLostError(
                f"run {run_id!r} is not leased to {owner} any more (held by {holder}); "
                "this process stops executing it"
            )
        return row

    async def append(
        self,
        run_id: str,
        owner: Owner,
        ticks: Sequence[tuple[int, str]],
        events: Sequence[tuple[int, str]],
        state: str | None,
        now: float,
        lease_until: float,
    ) -> None:
        await checkpoint()
        row = self._owned(run_id, owner)
        _add(run_id, row, ticks, events, state)
        row.updated_at = now
        row.lease_until = lease_until

    async def finish(
        self,
        run_id: str,
        owner: Owner,
        status: str,
        outcome: str,
        events: Sequence[tuple[int, str]],
        now: float,
    ) -> None:
        await checkpoint()
        row = self._owned(run_id, owner)
        _check_new(run_id, row.events, events, "event")
        row.events.update(events)
        row.status, row.outcome, row.updated_at = status, outcome, now
        row.owner = row.lease_until = None

    async def create(
        self,
        run_id: str,
        workflow: str,
        fingerprint: str,
        owner: Owner,
        ticks: Sequence[tuple[int, str]],
        events: Sequence[tuple[int, str]],
        state: str | None,
        now: float,
        lease_until: float,
    ) -> None:
        await checkpoint()
        if run_id in self._runs:
            raise exists_error(run_id)
        row = self._runs[run_id] = _Row(
            workflow, fingerprint, "running", now, now, str(owner), lease_until, state
        )
        row.ticks.update(ticks)
        row.events.update(events)

    async def append_and_finish(
        self,
        run_id: str,
        owner: Owner,
        ticks: Sequence[tuple[int, str]],
        events: Sequence[tuple[int, str]],
        state: str | None,
        status: str,
        outcome: str,
        now: float,
    ) -> None:
        await checkpoint()
        row = self._owned(run_id, owner)
        _add(run_id, row, ticks, events, state)
        row.status, row.outcome, row.updated_at = status, outcome, now
        row.owner = row.lease_until = None

    async def release(self, run_id: str, owner: Owner) -> None:
        await checkpoint()
        row = self._runs.get(run_id)
        if row is not None and row.owner == str(owner):
            row.owner = row.lease_until = None

    async def read_events(
        self, run_id: str, after: int = -1, limit: int | None = None
    ) -> list[tuple[int, str]]:
        await checkpoint()
        row = self._runs.get(run_id)
        if row is None:
            return []
        found = sorted((seq, text) for seq, text in row.events.items() if seq > after)
        return found if limit is None else found[:limit]

    async def read_ticks(self, run_id: str) -> list[tuple[int, str]]:
        await checkpoint()
        row = self._runs.get(run_id)
        return [] if row is None else sorted(row.ticks.items())

    async def get_run(self, run_id: str) -> RunRecord | None:
        await checkpoint()
        row = self._runs.get(run_id)
        return None if row is None else row.record(run_id)

    async def list_runs(
        self, *, workflow: str | None = None, status: str | None = None
    ) -> list[RunRecord]:
        await checkpoint()
        return sorted(
            (
                row.record(run_id)
                for run_id, row in self._runs.items()
                if (workflow is None or row.workflow == workflow)
                and (status is None or row.status == status)
            ),
            key=lambda r: (r.created_at, r.run_id),
        )

    async def delete(self, run_id: str) -> bool:
        await checkpoint()
        # No await between the check and the removal: nothing runs in between.
        row = self._runs.get(run_id)
        if row is None:
            return False
        if row.status not in FINISHED:
            raise unfinished_error(run_id)
        del self._runs[run_id]
        return True


def _add(
    run_id: str,
    row: _Row,
    ticks: Sequence[tuple[int, str]],
    events: Sequence[tuple[int, str]],
    state: str | None,
) -> None:
    """Add a batch to ``row`` (as ``append`` does), refusing a sequence number it holds."""
    _check_new(run_id, row.ticks, ticks, "tick")
    _check_new(run_id, row.events, events, "event")
    row.ticks.update(ticks)
    row.events.update(events)
    if state is not None:
        row.state = state


def _check_new(
    run_id: str, existing: dict[int, str], records: Sequence[tuple[int, str]], kind: str
) -> None:
    for seq, _ in records:
        if seq in existing:
            raise LeaseLostError(
                f"{kind} {seq} of run {run_id!r} is recorded already: another process "
                "wrote this run; this process stops executing it"
            )
