"""The three faces of a ``Context``, one per phase of a run, and what a step's
face needs from the driver (``StepHost``).

A ``Context`` holds one face at a time: ``PreContext`` before the run
(``restored``: a saved run to resume), ``ExternalContext`` for the caller
(the run's external adapter, and its state where the runtime can tell it),
``InternalContext`` for one step attempt (the driver as its ``host``, the
worker, the attempt and its retry timing). Each face's ``phase`` names it in
the ``ContextStateError`` a method called in the wrong phase raises. The
faces hold data only; what a method means in each phase is ``Context``'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from .._core.state import RunState
    from ..events import Event
    from ..runtime import ExternalRunAdapter

__all__ = ["ExternalContext", "Face", "InternalContext", "PreContext", "StepHost"]


class StepHost(Protocol):
    """What a step's context needs from the driver running it."""

    @property
    def state(self) -> RunState: ...
    def now(self) -> float: ...
    def send_from_step(self, event: Event, step: str | None, worker_id: int) -> None: ...
    def collect(
        self, worker_id: int, buffer_id: str, event: Event, expected: Sequence[type[Event]]
    ) -> list[Event] | None: ...
    def publish(self, event: Event) -> None: ...
    async def wait(
        self,
        worker_id: int,
        step: str,
        waiter_id: str,
        event_types: tuple[type[Event], ...],
        requirements: tuple[tuple[str, Any], ...],
        waiter_event: Event | None,
        timeout: float | None,
    ) -> tuple[Any, bool]: ...


class PreContext:
    phase = "not started (it has not been passed to wf.run() yet)"
    __slots__ = ("restored",)

    def __init__(self, restored: RunState | None = None) -> None:
        self.restored = restored
        """A saved run to resume (from ``Context.from_dict``)."""


class ExternalContext:
    phase = "the caller's view of a run"
    __slots__ = ("adapter", "snapshot")

    def __init__(
        self, adapter: ExternalRunAdapter, snapshot: Callable[[], RunState] | None
    ) -> None:
        self.adapter = adapter
        self.snapshot = snapshot
        """The run's current reducer state, where the runtime can tell it."""


class InternalContext:
    phase = "inside a step"
    __slots__ = (
        "attempt",
        "event_id",
        "failed_at",
        "host",
        "last_error",
        "started_at",
        "step",
        "waiting",
        "waits",
        "worker_id",
    )

    def __init__(
        self,
        host: StepHost,
        worker_id: int,
        step: str,
        attempt: int,
        last_error: Any,
        event_id: int = 0,
        *,
        started_at: float | None = None,
        failed_at: datetime | None = None,
    ) -> None:
        self.host = host
        self.worker_id = worker_id
        self.step = step
        self.event_id = event_id
        self.attempt = attempt
        self.last_error = last_error
        self.started_at = started_at
        """When the delivery's first attempt started, on the run's clock (None
        on the first attempt, or when the run does not know it)."""
        self.failed_at = failed_at
        """When the previous attempt failed (None on the first attempt)."""
        self.waits = 0  # wait_for_event calls so far in this attempt
        self.waiting = False

    def collect_events(
        self, event: Event, expected: Sequence[type[Event]], buffer_id: str | None = None
    ) -> list[Event] | None:
        """``Context.collect_events`` for the step this face belongs to (named
        as llama-index-workflows' ``InternalContext`` names it, for code that
        patches it; a join step's parameters do not go through it)."""
        return self.host.collect(self.worker_id, buffer_id or "default", event, expected)


Face = PreContext | ExternalContext | InternalContext
