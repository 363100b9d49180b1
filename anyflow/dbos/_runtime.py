"""``DBOSRuntime``: runs recorded in DBOS Transact, resumable from any process.

A run is one DBOS workflow (see ``_bridge``).  What DBOS records of it is the
run's tick log: one ``anyflow.record`` step per batch of ticks the reducer
applied, written before any command of that batch runs, carrying the batch's
ticks, the events it published and, when it changed, the run's state.  Since
the reducer is pure, that log is the run: a process that resumes it asks DBOS
for the recorded steps in order, folds their ticks, and goes on.  Step code
never talks to DBOS, so no step call needs an order of its own, and a chain
of n steps costs n recorded operations.

Ticks from other processes (events, cancellation) arrive as DBOS messages on
topic ``anyflow.tick``.  A run takes them with ``DBOS.recv``, which records
what it received; so that a replay knows where those receives were, each
round of them is announced by a record step first.  A run learns that it has
mail from a cheap read of DBOS's notifications table every ``poll_interval``
(or at once, when the sender is in the same process).

``DBOSRuntime`` is the face of four parts, each with one job: ``DBOSProcess``
(``_process``: DBOS launched and shut down), ``RunOwnership`` (``_ownership``:
which process executes a run, starting, taking over and following runs),
``DBOSJournal`` (``_run``: one run's record, on the shared
``anyflow.durable.journaling`` adapters) and ``DBOSRunCatalog`` (``_catalog``:
the recorded runs and their events, read back); ``_records`` declares what
the steps and the result of a run's DBOS workflow hold.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..durable.journaling import check_start_event
from ..runtime import BasicRuntime, RuntimeDecorator
from ..serialization import type_name
from ._ownership import RunOwnership
from ._process import DBOSProcess, require_asyncio
from ._run import DBOSExternal, DBOSInternal

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from types import TracebackType

    from ..durable import RunCatalog, RunRecord, StoredEvent
    from ..events import Event
    from ..handler import WorkflowHandler
    from ..runtime import ExternalRunAdapter, InternalRunAdapter, Runtime
    from ..workflow import Workflow
    from ._catalog import EventStream

__all__ = ["DBOSRuntime"]

_APP_NAME = re.compile(r"[a-z0-9_-]{3,256}")


class DBOSRuntime(RuntimeDecorator):
    """Hosts runs recorded in DBOS Transact: a run survives any process dying,
    and any process of the application can resume it, send it events and read
    its stream.

    ``async with DBOSRuntime(name="app", database_url="sqlite:///app.db") as rt:``
    launches DBOS (or, with no ``database_url``, uses the DBOS instance the
    application configured and launched).  ``wf.run(run_id="order-42",
    runtime=rt, **fields)`` starts the run ``order-42``; the same call for an
    unfinished run resumes it here, taking it over from the process that had
    it (DBOS fences that one off at its next record), and for a finished run
    returns its outcome.  ``rt.attach(wf, run_id)`` follows a run without
    executing it.  Leaving the block stops the runs executing here and leaves
    them resumable.

    asyncio only: DBOS's async API needs an asyncio event loop.  On trio, use
    ``anyflow.durable.DurableRuntime``.

    :param workflows: the workflows this process can execute when DBOS hands
        it a run it did not start (a run recovered at launch, or taken over).
        Every workflow that ran here is added; one that is missing is built
        from its class with no arguments.
    :param executor_id: this process's DBOS executor id; a new one by default.
        A process started with the id of a dead one recovers that one's
        unfinished runs at launch.
    :param application_version: pinned, so that a new release of the code
        still recovers the runs of the old one (anyflow checks that the
        workflow's steps did not change in a way its record cannot follow).
    :param poll_interval: how often a run looks for messages from other
        processes, and a follower for new records.
    :param attach_timeout: how long a follower waits for a run that is not
        recorded yet (started in another process a moment ago) before its
        handler, and every send through it, fail with a ``DurabilityError``.
    :param dbos_config: more of DBOS's configuration (``log_level``, ...),
        when the runtime launches DBOS.
    """

    def __init__(
        self,
        name: str = "anyflow",
        database_url: str | None = None,
        *,
        workflows: Iterable[Workflow] = (),
        executor_id: str | None = None,
        application_version: str = "anyflow-1",
        poll_interval: float = 0.1,
        attach_timeout: float = 5.0,
        dbos_config: Mapping[str, Any] | None = None,
        inner: Runtime | None = None,
    ) -> None:
        require_asyncio()
        super().__init__(inner if inner is not None else BasicRuntime())
        if poll_interval <= 0:
            raise ValueError("poll_interval is seconds > 0")
        if attach_timeout < 0:
            raise ValueError("attach_timeout is seconds >= 0")
        if not _APP_NAME.fullmatch(name):
            raise ValueError(
                f"DBOS application name {name!r}: use 3 to 256 lowercase letters, digits, "
                "dashes and underscores"
            )
        self.poll_interval = poll_interval
        self._process = DBOSProcess(
            name, database_url, executor_id, application_version, dbos_config
        )
        self._runs = RunOwnership(self, self._process, poll_interval, attach_timeout)
        self._catalog = self._runs.catalog
        for workflow in workflows:
            self._runs.workflows[type_name(type(workflow))] = workflow
        self._entered = False

    @property
    def name(self) -> str:
        """The DBOS application name."""
        return self._process.name

    @property
    def database_url(self) -> str | None:
        """DBOS's system database, when the runtime launches DBOS."""
        return self._process.database_url

    @property
    def executor_id(self) -> str:
        """This process's DBOS executor id (the application's, once entered
        without a ``database_url``)."""
        return self._process.executor_id

    @property
    def application_version(self) -> str:
        return self._process.application_version

    @property
    def dbos_config(self) -> dict[str, Any]:
        return self._process.dbos_config

    @property
    def keeps_runs(self) -> bool:
        return True

    # Entering and leaving.

    async def __aenter__(self) -> DBOSRuntime:
        import asyncio

        require_asyncio()
        self._runs.loop = asyncio.get_running_loop()
        await self._process.start(self._runs)
        try:
            await self.inner.__aenter__()
        except BaseException:
            await self._process.stop()
            raise
        self._entered = True
        self.inner.spawn(self._runs.watch_mail, name="anyflow dbos mail")
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
            self._runs.stop()
            await self._process.stop()

    def check_event(self, event: Event) -> None:
        """Refuse now a start event the run's record could not hold (or read back).

        :raises ContextSerdeError: naming the value and its path.
        """
        check_start_event(event)
        self.inner.check_event(event)

    def open_run(self, run_id: str) -> tuple[InternalRunAdapter, ExternalRunAdapter]:
        if not self._entered:
            raise RuntimeError(
                "this DBOSRuntime is not running: start runs inside "
                "`async with DBOSRuntime(...) as runtime:`"
            )
        run = self._runs.open(run_id)
        internal, external = self.inner.open_run(run_id)
        self._runs.hold(run)
        return DBOSInternal(internal, run), DBOSExternal(external, run)

    def add_workflow(self, workflow: Workflow) -> None:
        """Make ``workflow`` one this process can execute when DBOS hands it a
        run it did not start (as ``workflows=`` does)."""
        self._runs.add_workflow(workflow)

    def attach(self, workflow: Workflow, run_id: str) -> WorkflowHandler:
        """A handler that follows the run ``run_id`` of ``workflow`` (executing
        in any process of the application, or finished) without executing it:
        its events stream from the run's record, events sent reach the run as
        DBOS messages, and awaiting it gives the run's result."""
        return self._runs.attach(workflow, run_id)

    # Reading the record (the same questions DurableRuntime answers).

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run's record, or None if there is no such run."""
        return await self._catalog.get_run(run_id)

    async def list_runs(
        self, *, workflow: str | None = None, status: str | None = None
    ) -> list[RunRecord]:
        """The recorded runs, oldest first (``workflow`` is ``module:qualname``)."""
        return await self._catalog.list_runs(workflow=workflow, status=status)

    async def read_events(
        self, run_id: str, after: int = -1, limit: int | None = None
    ) -> list[StoredEvent]:
        """The run's recorded events with a sequence number above ``after``."""
        return await self._catalog.read_events(run_id, after, limit)

    def events(self, run_id: str, after: int = -1) -> EventStream:
        """The run's recorded events above ``after``, following the run until
        its last event, wherever it executes.

        :raises DurabilityError: if there is no such run.
        """
        return self._catalog.events(run_id, after)

    async def delete_run(self, run_id: str) -> None:
        """Delete a finished run's record."""
        await self._catalog.delete_run(run_id)

    @property
    def resumes_recorded_runs(self) -> bool:
        """False: DBOS decides which process executes a recorded run (its own,
        after a restart with the same executor id); others follow it."""
        return False

    def handler_for(
        self, workflow: Workflow, run_id: str, runtime: Runtime | None = None
    ) -> WorkflowHandler:
        """A handler on the recorded unfinished run ``run_id``: one that follows
        it (``attach``), wherever it executes."""
        return self.attach(workflow, run_id)


if TYPE_CHECKING:

    def _is_a_run_catalog(runtime: DBOSRuntime) -> RunCatalog:
        return runtime  # mypy checks that DBOSRuntime satisfies RunCatalog
