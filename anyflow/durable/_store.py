"""The store contract: what a durable runtime needs from a database.

A store keeps, per run: a row (workflow name, status, times, the workflow's
fingerprint, the lease, the latest snapshot of the run's state store, the
outcome), the journal (tick records numbered 0, 1, 2, ... with no gaps) and
the published events (numbered the same way).  Records are opaque text to the
store: the journal layer encodes, checksums and decodes them, so every store
detects the same corruption the same way.

Every method is one atomic transaction.  Blocking drivers run in worker
threads: a store never blocks the event loop.
"""

from __future__ import annotations

import os
import socket
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import attrs

from ..errors import DurabilityError, RunLockedError

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "FINISHED",
    "Owner",
    "RunRecord",
    "Store",
    "StoreDecorator",
    "StoredRun",
    "lease_is_free",
]

FINISHED = frozenset({"completed", "failed", "cancelled", "timed_out"})
"""The statuses of a finished run; an unfinished run is ``"running"``."""


@attrs.frozen
class RunRecord:
    """One run of a durable store, as ``DurableRuntime.list_runs()`` shows it."""

    run_id: str
    workflow: str
    """The workflow class, as ``module:qualname``."""
    status: str
    """``"running"`` (also a run whose process died: it resumes when run again),
    ``"completed"``, ``"failed"``, ``"cancelled"`` or ``"timed_out"``."""
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(
        cls, run_id: str, workflow: str, status: str, created_at: float, updated_at: float
    ) -> RunRecord:
        """From the epoch seconds a store keeps."""
        return cls(
            run_id,
            workflow,
            status,
            datetime.fromtimestamp(created_at, timezone.utc),
            datetime.fromtimestamp(updated_at, timezone.utc),
        )


@attrs.frozen
class StoredRun:
    """Everything recorded of one run, as ``Store.claim`` reads it."""

    record: RunRecord
    fingerprint: str
    ticks: Sequence[tuple[int, str]]
    """The journal, ordered by sequence number (gaps are the journal layer's to report)."""
    state: str | None
    """The latest snapshot of the run's state store."""
    outcome: str | None
    """Set once the run has finished."""
    event_count: int
    """How many events are recorded (the next event's sequence number, if
    nothing is missing)."""
    created: bool
    """True if ``claim`` created the run just now."""


_PROCESS = uuid.uuid4().hex[:12]
"""Names this process: a pid can be reused (a restarted container's main
process often gets the pid of the one that died), this cannot."""


@attrs.frozen
class Owner:
    """Who executes a run: a process (host, pid and a token of the process) and,
    in it, one runtime (``token``).

    The lease names its owner so that a process restarted after a crash can
    take over at once the runs of a dead process on its own host, instead of
    waiting for their leases to expire.
    """

    host: str
    pid: int
    token: str
    process: str = _PROCESS

    @classmethod
    def here(cls) -> Owner:
        return cls(socket.gethostname(), os.getpid(), uuid.uuid4().hex[:12])

    def __str__(self) -> str:
        return f"{self.host}/{self.pid}/{self.process}/{self.token}"

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        parts = text.rsplit("/", 3)
        if len(parts) != 4:
            return None
        host, pid, process, token = parts
        try:
            return cls(host, int(pid), token, process)
        except ValueError:
            return None


def _process_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def lease_is_free(
    holder: str | None, lease_until: float | None, claimant: Owner, now: float
) -> bool:
    """Whether ``claimant`` may take a run whose lease is ``holder``'s until
    ``lease_until``: nobody holds it, it is the claimant's own, it has
    expired, or its holder was a process of this host that is gone (its pid is
    free, or is the claimant's own pid reused by a new process).
    """
    if holder is None or holder == str(claimant):
        return True
    if lease_until is None or lease_until < now:
        return True
    owner = Owner.parse(holder)
    if owner is None or owner.host != claimant.host:
        return False
    if owner.pid == claimant.pid:
        return owner.process != claimant.process
    return not _process_is_alive(owner.pid)


def locked_error(run_id: str, holder: str, lease_until: float, now: float) -> RunLockedError:
    """The error for a claim on a run that someone else is executing."""
    return RunLockedError(
        f"run {run_id!r} is being executed by {holder} (its lease runs for another "
        f"{max(lease_until - now, 0):.0f}s): only one process executes a run at a time; "
        "wait for it to finish, or stop that process (a dead process's runs are taken "
        "over at once on its own host, and on other hosts when its lease expires)"
    )


def exists_error(run_id: str) -> RunLockedError:
    """The error for creating a run that exists already."""
    return RunLockedError(
        f"run {run_id!r} was recorded by another caller while this one started it: a run "
        "is executed by one caller at a time; resume it by its id instead"
    )


def unfinished_error(run_id: str) -> DurabilityError:
    """The error for deleting a run that has not finished."""
    return DurabilityError(
        f"run {run_id!r} is unfinished (status 'running') and cannot be deleted: it may be "
        "executing somewhere, and deleting it would lose the records it is yet to write; "
        "cancel it first, and delete it once it has finished"
    )


class Store(ABC):
    """Where a durable runtime keeps its runs.  See the module's docstring.

    A store is an async context manager; ``aclose()`` releases its connections.
    Stores are shared by all runs of a runtime, and may be shared by several
    processes (SQLite on one host, PostgreSQL anywhere).
    """

    @abstractmethod
    async def claim(
        self,
        run_id: str,
        workflow: str,
        fingerprint: str,
        owner: Owner,
        now: float,
        lease_until: float,
    ) -> StoredRun:
        """Create the run (status ``"running"``, leased to ``owner``) if it does
        not exist; otherwise read it, and lease it to ``owner`` if it is
        unfinished.  A finished run is read without a lease.

        :raises RunLockedError: if the run is unfinished and its lease is not
            free for ``owner`` (see ``lease_is_free``); nothing is changed.
        """

    @abstractmethod
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
        """Add journal and event records, replace the state snapshot if
        ``state`` is not None, set ``updated_at`` and extend the lease.

        :raises LeaseLostError: if ``owner`` does not hold the run's lease, or
            a record with one of these sequence numbers exists; nothing is written.
        """

    @abstractmethod
    async def finish(
        self,
        run_id: str,
        owner: Owner,
        status: str,
        outcome: str,
        events: Sequence[tuple[int, str]],
        now: float,
    ) -> None:
        """Record the outcome and the last events, set the status, and release
        the lease; exactly once per run.

        :raises LeaseLostError: if ``owner`` does not hold the lease (which
            includes a run that has finished already); nothing is written.
        """

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
        """Create the run (status ``"running"``, leased to ``owner``) with its
        first records (as ``append`` adds them): a new run is recorded with its
        first batch, in one transaction.

        The default claims the run and then appends, in two transactions; a
        store that can should override it with one (anyflow's stores do).

        :raises RunLockedError: if the run exists already (another caller
            recorded it meanwhile); nothing is written.
        """
        stored = await self.claim(run_id, workflow, fingerprint, owner, now, lease_until)
        if not stored.created:
            if stored.record.status not in FINISHED:
                await self.release(run_id, owner)  # claimed just now: not ours to keep
            raise exists_error(run_id)
        await self.append(run_id, owner, ticks, events, state, now, lease_until)

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
        """``append`` the run's last records and ``finish`` it, in one
        transaction: the batch that ends a run is recorded with its end.

        The default appends and then finishes, in two transactions; a store
        that can should override it with one (anyflow's stores do).

        :raises LeaseLostError: as ``append`` and ``finish``; nothing is written.
        """
        await self.append(run_id, owner, ticks, events, state, now, now)
        await self.finish(run_id, owner, status, outcome, (), now)

    @abstractmethod
    async def release(self, run_id: str, owner: Owner) -> None:
        """Give up ``owner``'s lease on an unfinished run (it stays resumable).
        No-op if ``owner`` does not hold it."""

    @abstractmethod
    async def read_events(
        self, run_id: str, after: int = -1, limit: int | None = None
    ) -> list[tuple[int, str]]:
        """Recorded events with a sequence number above ``after``, in order."""

    @abstractmethod
    async def read_ticks(self, run_id: str) -> list[tuple[int, str]]:
        """The run's journal, in order, read without taking its lease (for
        inspecting or replaying a run, live or finished)."""

    @abstractmethod
    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run's row, or None if there is no such run."""

    @abstractmethod
    async def list_runs(
        self, *, workflow: str | None = None, status: str | None = None
    ) -> list[RunRecord]:
        """Runs, oldest first, optionally only those of ``workflow`` / with ``status``."""

    @abstractmethod
    async def delete(self, run_id: str) -> bool:
        """Purge a finished run for good: its row (state snapshot and outcome
        included), its journal and its events.  Return True if the run
        existed, False if there was no such run.  Afterwards the run id is
        free: a ``claim`` of it creates a new run.

        Only a finished run (status in ``FINISHED``) can be deleted.  An
        unfinished one may be executing in some process right now, which
        would lose its lease and the records it has yet to write; and even a
        run nobody executes stays resumable until it finishes.  The check and
        the deletion are one transaction, so nothing can change the run
        between them.

        :raises DurabilityError: if the run is unfinished (status
            ``"running"``): cancel it and let it finish first.  Nothing is
            deleted.
        """

    async def ping(self) -> None:
        """Check that the store works now: a write where one can fail on its
        own (a file), a round trip to the database otherwise.  A server calls
        it at start and, after a failure, until the store works again.

        :raises StoreUnavailableError: saying what failed.
        """
        await self.get_run("")

    async def aclose(self) -> None:  # noqa: B027 - nothing to release by default
        """Release connections; the store is not used afterwards."""

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class StoreDecorator(Store):
    """Forwards everything to ``inner``; subclass and override what you add to
    (counting, fault injection, metrics), as with the runtime's decorators.

    ``create`` and ``append_and_finish`` are not forwarded: they take the
    base class's two steps through this decorator's own ``claim``, ``append``
    and ``finish``, so an override of ``append`` sees every batch.
    """

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    async def claim(
        self,
        run_id: str,
        workflow: str,
        fingerprint: str,
        owner: Owner,
        now: float,
        lease_until: float,
    ) -> StoredRun:
        return await self.inner.claim(run_id, workflow, fingerprint, owner, now, lease_until)

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
        await self.inner.append(run_id, owner, ticks, events, state, now, lease_until)

    async def finish(
        self,
        run_id: str,
        owner: Owner,
        status: str,
        outcome: str,
        events: Sequence[tuple[int, str]],
        now: float,
    ) -> None:
        await self.inner.finish(run_id, owner, status, outcome, events, now)

    async def release(self, run_id: str, owner: Owner) -> None:
        await self.inner.release(run_id, owner)

    async def read_events(
        self, run_id: str, after: int = -1, limit: int | None = None
    ) -> list[tuple[int, str]]:
        return await self.inner.read_events(run_id, after, limit)

    async def read_ticks(self, run_id: str) -> list[tuple[int, str]]:
        return await self.inner.read_ticks(run_id)

    async def get_run(self, run_id: str) -> RunRecord | None:
        return await self.inner.get_run(run_id)

    async def list_runs(
        self, *, workflow: str | None = None, status: str | None = None
    ) -> list[RunRecord]:
        return await self.inner.list_runs(workflow=workflow, status=status)

    async def delete(self, run_id: str) -> bool:
        return await self.inner.delete(run_id)

    async def ping(self) -> None:
        await self.inner.ping()

    async def aclose(self) -> None:
        await self.inner.aclose()
