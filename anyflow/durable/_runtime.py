"""``DurableRuntime``: every tick is committed to a store before its commands run.

A run's state is the fold of its ticks, so a run whose process died is rebuilt
by replaying its journal, and goes on: the steps whose results were committed
do not run again; the attempts that were executing (or waiting) run again.

The runtime decorates another (``BasicRuntime`` by default): it adds the
journal to the adapters and changes nothing else.  Its clock is the wall clock,
so deadlines recorded by one process mean the same in the next.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING

import anyio

from ..errors import DurabilityError, RunLockedError
from ..runtime import BasicRuntime, RuntimeDecorator
from ._reading import EndedRuns, EventReader, LiveEventReader, decode_stored_event
from ._store import Owner, RunRecord, Store
from ._store_journal import StoreJournal
from .journaling import JournalingExternal, JournalingInternal, check_start_event

if TYPE_CHECKING:
    import os
    from collections.abc import Iterator
    from types import TracebackType

    from ..events import Event
    from ..handler import WorkflowHandler
    from ..runtime import ExternalRunAdapter, InternalRunAdapter, Runtime
    from ..workflow import Workflow
    from ._catalog import LiveRunCatalog
    from ._reading import StoredEvent

__all__ = ["DurableRuntime"]

log = logging.getLogger("anyflow.durable")


class DurableRuntime(RuntimeDecorator):
    """Hosts runs whose every tick is recorded in ``store`` before it takes effect.

    ``wf.run(run_id="order-42", runtime=durable, **fields)`` starts the run
    ``order-42``; the same call for a recorded, unfinished run (after a crash,
    in a new process) resumes it, and for a finished run returns its recorded
    outcome.  The fields may be left out to resume only.

    :param store: a ``Store``, or a path to a SQLite file (the runtime then
        owns the store and closes it when its block ends).
    :param inner: the runtime that executes the runs (``BasicRuntime()`` by default).
    :param lease: seconds a run stays claimed by this process without news from
        it; the lease is renewed every third of that while the process lives.
        Another host takes over a run only once its lease has expired; a dead
        process on the same host is detected at once.
    :param poll_interval: how often ``events()`` looks for new records of a run
        executed by another process.
    :param wall_clock: True (the default): runs keep time by the wall clock,
        so recorded deadlines mean the same in the next process.  False: by
        the inner runtime's clock (a simulator's virtual clock, which goes on
        across the crashes it simulates).
    """

    def __init__(
        self,
        store: Store | str | os.PathLike[str],
        inner: Runtime | None = None,
        *,
        lease: float = 30.0,
        poll_interval: float = 0.5,
        wall_clock: bool = True,
    ) -> None:
        super().__init__(inner if inner is not None else BasicRuntime())
        if isinstance(store, Store):
            self.store = store
            self._owns_store = False
        else:
            from ._sqlite import SqliteStore

            self.store = SqliteStore(store)
            self._owns_store = True
        if lease <= 0 or poll_interval <= 0:
            raise ValueError("lease and poll_interval are seconds > 0")
        self.lease = lease
        self.poll_interval = poll_interval
        self.wall_clock = wall_clock
        self.owner = Owner.here()
        self._active: dict[str, StoreJournal] = {}
        self._ended = EndedRuns()
        self._entered = False
        self._new: set[str] = set()

    @property
    def keeps_runs(self) -> bool:
        return True

    def check_event(self, event: Event) -> None:
        """Refuse now a start event the journal could not record (or read back).

        :raises ContextSerdeError: naming the value and its path.
        """
        check_start_event(event)
        self.inner.check_event(event)

    def open_run(self, run_id: str) -> tuple[InternalRunAdapter, ExternalRunAdapter]:
        if not self._entered:
            raise RuntimeError(
                "this DurableRuntime is not running: start runs inside "
                "`async with DurableRuntime(store) as runtime:`"
            )
        if run_id in self._active:
            raise RunLockedError(
                f"run {run_id!r} is already running in this runtime: use the handler "
                "that started it (a run is executed once at a time)"
            )
        internal, external = self.inner.open_run(run_id)
        journal = self._active[run_id] = StoreJournal(self, run_id, new=run_id in self._new)
        return (
            JournalingInternal(internal, journal, wall_clock=self.wall_clock),
            JournalingExternal(external, journal),
        )

    @contextlib.contextmanager
    def starting_new(self, run_id: str) -> Iterator[None]:
        """A block in which a run started under ``run_id`` is a new one: it is
        not looked up in the store first.  Its first batch creates it, or, if
        the store has a run of that id (another caller recorded it), is
        refused: the run stops with a ``RunLockedError``, which
        ``handler.wait_recorded()`` raises, instead of resuming the run
        recorded::

            with runtime.starting_new(run_id):
                handler = wf.run(run_id=run_id, runtime=runtime, **fields)
            await handler.wait_recorded()  # RunLockedError: the id is taken

        For a caller that draws fresh ids, or must not take over another
        caller's run (a server): the check and the creation are one store
        transaction, and a new run costs one store call less.
        """
        self._new.add(run_id)
        try:
            yield
        finally:
            self._new.discard(run_id)

    async def __aenter__(self) -> DurableRuntime:
        await self.inner.__aenter__()
        self._entered = True
        self.inner.spawn(self._renew_leases, name="anyflow durable leases")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        try:
            return await self.inner.__aexit__(exc_type, exc, tb)
        finally:
            self._entered = False
            if self._owns_store:
                with anyio.CancelScope(shield=True):
                    await self.store.aclose()

    async def _renew_leases(self) -> None:
        while True:
            await anyio.sleep(self.lease / 3)
            for journal in list(self._active.values()):
                if journal.claimed and not journal.ended:
                    now = time.time()
                    try:
                        await self.store.append(
                            journal.run_id, self.owner, (), (), None, now, now + self.lease
                        )
                        journal.wrote(now)
                    except DurabilityError as exc:
                        if not journal.claimed or journal.ended:
                            # The run ended (or was let go) while this renewal
                            # waited for the store: its lease is not needed,
                            # and a store refuses to renew a finished run.
                            continue
                        log.warning(
                            "run %r: its lease could not be renewed: %s", journal.run_id, exc
                        )

    # Reading the store.

    async def list_runs(
        self, *, workflow: str | None = None, status: str | None = None
    ) -> list[RunRecord]:
        """The recorded runs, oldest first (``workflow`` is ``module:qualname``)."""
        return await self.store.list_runs(workflow=workflow, status=status)

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run's record, or None if there is no such run.  A run this
        runtime executes (and so holds: nobody else writes its row) is
        answered from what the runtime wrote, without asking the store."""
        journal = self._active.get(run_id)
        if journal is not None:
            record = journal.current_record()
            if record is not None:
                return record
        return await self.store.get_run(run_id)

    async def read_events(
        self, run_id: str, after: int = -1, limit: int | None = None
    ) -> list[StoredEvent]:
        """The run's recorded events with a sequence number above ``after``."""
        kept = self._ended.events(run_id, after, limit)
        if kept is not None:
            return kept
        return [
            decode_stored_event(text, run_id, seq)
            for seq, text in await self.store.read_events(run_id, after, limit=limit)
        ]

    async def delete_run(self, run_id: str) -> None:
        """Delete a finished run's records (see ``Store.delete``)."""
        self._ended.forget(run_id)
        await self.store.delete(run_id)

    @property
    def resumes_recorded_runs(self) -> bool:
        """True: any process may resume a recorded unfinished run (the lease
        keeps two from executing it at once)."""
        return True

    def handler_for(
        self, workflow: Workflow, run_id: str, runtime: Runtime | None = None
    ) -> WorkflowHandler:
        """A handler on the recorded unfinished run ``run_id``: it resumes here,
        in ``runtime`` (this one, or a decorator of it)."""
        return workflow.run(run_id=run_id, runtime=runtime if runtime is not None else self)

    def add_workflow(self, workflow: Workflow) -> None:
        """Nothing to do: a ``DurableRuntime`` executes only the runs its
        callers start or resume, with the workflow they give (``RunCatalog``
        asks it of every runtime, for those that are handed runs)."""

    def events(self, run_id: str, after: int = -1) -> EventReader:
        """The run's recorded events with a sequence number above ``after``, as
        ``StoredEvent``s, following the run until its last event.

        A consumer that reconnects passes the last ``seq`` it got, and goes on
        without a gap or a duplicate.  Events appear when they are committed
        (with the run's next tick batch): for a live view of a run of this
        process use ``handler.stream_events()``.

        :raises DurabilityError: if there is no such run.
        """
        return EventReader(self, run_id, after)

    def live_events(self, run_id: str, after: int | None = -1) -> LiveEventReader:
        """The run's events after the recorded position ``after`` (None: from
        now on, and first a ``Committed`` of the last recorded position then,
        -1 for none), as they are published: following the run to its end.

        While the run executes in this process, an event a step writes to the
        stream comes at once, as a ``LiveEvent`` (not yet recorded); a
        ``Committed`` follows once its step's batch is recorded (or the event
        comes again as a ``StoredEvent`` to a reader that lagged behind).
        Events already recorded, and those of a run executed elsewhere, come
        as ``StoredEvent``s.  The ``StoredEvent``s and ``Committed``s are the
        recorded stream with no gap and no duplicate: a reader that passes the
        last ``seq`` of them as ``after`` goes on where it left.  A
        ``LiveEvent`` whose batch was never recorded (its process died) is
        not in that stream; the step, run again, publishes its events again.

        :raises DurabilityError: if there is no such run.
        """
        return LiveEventReader(self, run_id, after)


if TYPE_CHECKING:

    def _is_a_live_run_catalog(runtime: DurableRuntime) -> LiveRunCatalog:
        return runtime  # mypy checks that DurableRuntime satisfies LiveRunCatalog
