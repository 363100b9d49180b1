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
    from collections.abc import Callable, Sequence
    from typing import Any

    from ..runtime import ExternalRunAdapter, InternalRunAdapter, Runtime
    from ..runtime.vocabulary import Command, Tick

__all__ = ["ReleasableRuntime", "Releasable"]


class Releasable(InternalRunAdapterDecorator):
    """One run's adapter: counts the tick batches it takes, so that an idle
    notice can be checked later for whether anything happened since."""

    __slots__ = ("batches", "on_idle", "on_turn", "released", "scope")

    def __init__(
        self,
        inner: InternalRunAdapter,
        on_idle: Callable[[str, int], None],
        on_turn: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(inner)
        self.scope = anyio.CancelScope()
        self.batches = 0
        self.on_idle = on_idle
        self.on_turn = on_turn
        self.released = False

    def run_scope(self) -> contextlib.AbstractContextManager[object]:
        return self.scope

    async def receive_ticks(self) -> list[Tick]:
        if self.on_turn is not None:
            self.on_turn()  # the last batch is done: its commands have been carried out
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


class Held(Releasable):
    """A run recorded and not run: it is released as soon as its first batch
    of ticks (its start) is recorded, before any of its commands is carried
    out, so no step's code runs."""

    __slots__ = ()

    async def on_ticks(self, ticks: Sequence[Tick], commands: Sequence[Command]) -> None:
        await self.inner.on_ticks(ticks, commands)
        self.release()
        await anyio.lowlevel.checkpoint()  # the cancellation of the release, here


class ReleasableRuntime(RuntimeDecorator):
    """Wraps each run's internal adapter in a ``Releasable``.

    ``on_turn`` (if given) is called each time a run has carried out a batch of
    ticks and waits for the next: the moment its state may have become quiet.
    A run id in ``hold`` gets a ``Held`` adapter when it opens.
    """

    def __init__(
        self,
        inner: Runtime,
        on_idle: Callable[[str, int], None],
        on_turn: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(inner)
        self._on_idle = on_idle
        self._on_turn = on_turn
        self.adapters: dict[str, Releasable] = {}
        self.hold: set[str] = set()

    def open_run(self, run_id: str) -> tuple[InternalRunAdapter, ExternalRunAdapter]:
        internal, external = self.inner.open_run(run_id)
        kind = Held if run_id in self.hold else Releasable
        releasable = self.adapters[run_id] = kind(internal, self._on_idle, self._on_turn)
        return releasable, external
