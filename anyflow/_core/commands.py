"""Commands: everything the reducer asks the driver to do."""

from __future__ import annotations

from typing import Any

import attrs

from .state import Delivery, Outcome


@attrs.frozen
class StartWorker:
    """Execute ``step`` on ``delivery.event`` as worker ``worker_id``."""

    worker_id: int
    step: str
    delivery: Delivery


@attrs.frozen
class Publish:
    """Put ``event`` on the run's outgoing stream."""

    event: Any


@attrs.frozen
class ScheduleTimer:
    """Deliver ``TimerFired(timer_id)`` once the clock reaches ``deadline``."""

    timer_id: str
    deadline: float


@attrs.frozen
class CancelTimer:
    timer_id: str


@attrs.frozen
class ReturnCollected:
    """Answer worker ``worker_id``'s ``collect_events`` call."""

    worker_id: int
    events: tuple[Any, ...] | None


@attrs.frozen
class ResumeWorker:
    """Answer worker ``worker_id``'s ``wait_for_event`` call with ``event``, or
    tell it that its wait timed out."""

    worker_id: int
    event: Any
    timed_out: bool = False


@attrs.frozen
class CancelWorker:
    """Interrupt worker ``worker_id``'s attempt: it ran out of time."""

    worker_id: int


@attrs.frozen
class Finish:
    """The run is over: stop every worker and timer, report ``outcome``."""

    outcome: Outcome


Command = (
    StartWorker
    | Publish
    | ScheduleTimer
    | CancelTimer
    | ReturnCollected
    | ResumeWorker
    | CancelWorker
    | Finish
)
