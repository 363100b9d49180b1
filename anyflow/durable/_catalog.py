"""``RunCatalog``: what a runtime that records its runs tells about them.

A runtime that keeps a record of its runs (``DurableRuntime`` in a ``Store``,
``DBOSRuntime`` in DBOS) answers the same questions about them: which runs
there are, what each published, how to reach an unfinished one again.  A
layer that shows recorded runs (the server's handlers, their event streams)
asks them through this protocol, so it works on either runtime, or on a
user's own, without knowing which it is.  A class satisfies it by having
these members; it need not subclass it.

``LiveRunCatalog`` is the same with one thing more, a run's events as they
are published, before they are recorded (``DurableRuntime`` offers it): a
layer that follows runs asks ``isinstance(catalog, LiveRunCatalog)`` and
reads recorded events otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ..handler import WorkflowHandler
    from ..runtime import Runtime
    from ..workflow import Workflow
    from ._reading import Committed, LiveEvent, StoredEvent
    from ._store import RunRecord

__all__ = ["LiveEventFeed", "LiveRunCatalog", "RunCatalog"]


@runtime_checkable
class RunCatalog(Protocol):
    """The recorded runs of a runtime, and how to reach one again.

    ``WorkflowServer(runtime=...)`` takes a ``Runtime`` that is also a
    ``RunCatalog``; ``DurableRuntime`` and ``DBOSRuntime`` are both (mypy
    checks it where each is defined).  ``isinstance(x, RunCatalog)`` checks
    only that ``x`` has these members.
    """

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run's record, or None if there is no such run."""
        ...

    async def list_runs(
        self, *, workflow: str | None = None, status: str | None = None
    ) -> list[RunRecord]:
        """The recorded runs, oldest first, optionally only those of
        ``workflow`` (``module:qualname``) / with ``status``."""
        ...

    async def read_events(
        self, run_id: str, after: int = -1, limit: int | None = None
    ) -> list[StoredEvent]:
        """The run's recorded events with a sequence number above ``after``,
        in order, at most ``limit`` of them."""
        ...

    def events(self, run_id: str, after: int = -1) -> AsyncIterator[StoredEvent]:
        """The run's recorded events above ``after``, following the run until
        its last event, wherever it executes."""
        ...

    async def delete_run(self, run_id: str) -> None:
        """Delete a finished run's record."""
        ...

    @property
    def resumes_recorded_runs(self) -> bool:
        """Whether a process may resume any recorded unfinished run (with
        ``handler_for``), as a server does at start; False if the runtime
        decides which process executes a recorded run."""
        ...

    def handler_for(
        self, workflow: Workflow, run_id: str, runtime: Runtime | None = None
    ) -> WorkflowHandler:
        """A handler on the recorded unfinished run ``run_id`` of ``workflow``,
        to send it events, follow or cancel it (``runtime``: this runtime or a
        decorator of it, where the run resumes if it resumes here)."""
        ...

    def add_workflow(self, workflow: Workflow) -> None:
        """Make ``workflow`` one this runtime can execute when it is handed a
        recorded run it did not start (a no-op for a runtime that executes
        only the runs its callers start or resume)."""
        ...


class LiveEventFeed(Protocol):
    """A run's events as ``LiveRunCatalog.live_events`` gives them, in batches."""

    async def next_batch(self) -> list[StoredEvent | LiveEvent | Committed]:
        """The items ready (at least one), or ``[]`` once the run's last
        event was given."""
        ...

    @property
    def done(self) -> bool:
        """Whether everything was given: the next batch is ``[]``."""
        ...


@runtime_checkable
class LiveRunCatalog(RunCatalog, Protocol):
    """A ``RunCatalog`` that also follows a run live, as its steps publish.

    ``DurableRuntime`` is one (mypy checks it where it is defined);
    ``DBOSRuntime`` is not: its events are read as recorded.
    """

    def live_events(self, run_id: str, after: int | None = -1) -> LiveEventFeed:
        """The run's events after the recorded position ``after`` (None: from
        now on, first saying where now is with a ``Committed``), as they are
        published, until its end: ``LiveEvent``s not yet recorded, the
        ``Committed`` word once they are, and ``StoredEvent``s for what was
        recorded before (see ``DurableRuntime.live_events``).

        :raises DurabilityError: if there is no such run.
        """
        ...
