"""Idle release: a run that only waits for outside input leaves memory.

A server may hold thousands of runs that wait for a person's answer for days.
Such a run needs nothing but its journal: after ``idle_timeout`` the server
stops it (resumably: the durable record stays "running") and resumes it from
the journal when an event for it arrives, or when one of its deadlines comes.

This runtime decorator gives the server what it needs for that and nothing
else: a cancel scope per run (through the adapters' ``run_scope``), and word
of when a run became idle and when it stopped being so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from ..events import WorkflowIdleEvent
from ..runtime import InternalRunAdapterDecorator, RuntimeDecorator

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Callable
    from typing import Any

    from ..runtime import ExternalRunAdapter, InternalRunAdapter, Runtime
    from ..runtime.vocabulary import Tick

__all__ = ["ReleasableRuntime", "Releasable"]


class Releasable(InternalRunAdapterDecorator):
    """One run's adapter: counts the tick batches it takes, so that an idle
    notice can be checked later for whether anything happened since."""

    __slots__ = ("batches", "on_idle", "released", "scope")

    def __init__(self, inner: InternalRunAdapter, on_idle: Callable[[str, int], None]) -> None:
        super().__init__(inner)
        self.scope = anyio.CancelScope()
        self.batches = 0
        self.on_idle = on_idle
        self.released = False

    def run_scope(self) -> contextlib.AbstractContextManager[object]:
        return self.scope

    async def receive_ticks(self) -> list[Tick]:
        ticks = await self.inner.receive_ticks()
        if ticks:
            self.batches += 1
        return ticks

    def publish(self, event: Any) -> None:
        self.inner.publish(event)
        if isinstance(event, WorkflowIdleEvent):
            self.on_idle(self.run_id, self.batches)

    def release(self) -> None:
        """Stop the run; it stays recorded as unfinished."""
        self.released = True
        self.scope.cancel()


class ReleasableRuntime(RuntimeDecorator):
    """Wraps each run's internal adapter in a ``Releasable``."""

    def __init__(self, inner: Runtime, on_idle: Callable[[str, int], None]) -> None:
        super().__init__(inner)
        self._on_idle = on_idle
        self.adapters: dict[str, Releasable] = {}

    def open_run(self, run_id: str) -> tuple[InternalRunAdapter, ExternalRunAdapter]:
        internal, external = self.inner.open_run(run_id)
        releasable = self.adapters[run_id] = Releasable(internal, self._on_idle)
        return releasable, external
