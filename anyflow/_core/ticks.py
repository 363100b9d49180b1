"""Ticks: everything that reaches the reducer from outside.

A tick is a fact that has happened (an event arrived, a step finished, a timer
fired); the reducer decides what it means.  Time enters only as a tick field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs


@attrs.frozen
class RunStarted:
    """The run begins with ``start_event``; ``now`` anchors its deadline."""

    start_event: Any
    now: float


@attrs.frozen
class RunResumed:
    """A run that stopped part-way goes on: from a saved context, or from its
    journal after a crash.

    Every attempt that was executing or waiting when it stopped runs again.
    ``recovered`` is True when the run goes on with the same clock and the same
    stream (a durable runtime replaying its journal): deadlines then stand, and
    questions already asked are not asked again.
    """

    now: float
    recovered: bool = False


@attrs.frozen
class EventSent:
    """An event entered the run through ``send_event``.

    ``step`` restricts delivery to one step; ``external`` is True for events
    sent by the caller rather than by a step.  ``worker_id`` names the step
    attempt that sent it (None for the caller's events, and in journals written
    before it was recorded): the reducer counts an attempt's sends, so that its
    re-run after a resume does not deliver again what it sent before.
    """

    event: Any
    step: str | None = None
    external: bool = False
    now: float = 0.0
    worker_id: int | None = None


@attrs.frozen
class StepCompleted:
    """A worker's step function returned ``output`` (an event or None)."""

    worker_id: int
    output: Any = None
    now: float = 0.0


@attrs.frozen
class StepFailed:
    """A worker's step function raised ``error``.

    ``retry_delay`` is the retry policy's verdict, computed outside the reducer
    because the policy is user code: seconds to wait before the next attempt,
    or None to give up.  ``now`` anchors the retry deadline.
    """

    worker_id: int
    error: Any
    retry_delay: float | None = None
    now: float = 0.0
    failure_event: Any = None
    """What a catching step receives if this failure is final (a StepFailedEvent)."""
    started_at: float | None = None
    """When the failed attempt started, for the first failure of a delivery (a
    later one need not tell: the delivery remembers its first start)."""


@attrs.frozen
class EventCollected:
    """A step called ``collect_events(event, expected, buffer_id)``."""

    worker_id: int
    buffer_id: str
    event: Any
    expected: Sequence[type]
    now: float = 0.0


@attrs.frozen
class CancelRequested:
    """The caller asked for the run to stop."""

    now: float = 0.0


@attrs.frozen
class WaitStarted:
    """A step called ``ctx.wait_for_event``: it waits for an event of one of
    ``event_types`` with the ``requirements`` field values."""

    worker_id: int
    waiter_id: str
    event_types: tuple[type, ...]
    requirements: tuple[tuple[str, Any], ...] = ()
    waiter_event: Any = None
    """Published once per waiter id, e.g. the question to the human."""
    timeout: float | None = None
    now: float = 0.0


@attrs.frozen
class WaitAbandoned:
    """A waiting step stopped waiting on its own (its code cancelled the wait);
    it goes on once its step has a free worker slot."""

    worker_id: int
    now: float = 0.0


@attrs.frozen
class TimerFired:
    """A timer scheduled with ``ScheduleTimer`` is due."""

    timer_id: str
    now: float


Tick = (
    RunStarted
    | RunResumed
    | EventSent
    | StepCompleted
    | StepFailed
    | EventCollected
    | WaitStarted
    | WaitAbandoned
    | CancelRequested
    | TimerFired
)

EXTERNAL_TICKS: tuple[type, ...] = (CancelRequested,)
"""Tick types that always come from outside the run (see ``is_external``)."""


def is_external(tick: Tick) -> bool:
    """Whether ``tick`` came from the caller rather than from the run itself.

    The driver applies a batch's internal ticks before its external ones, so a
    step's result is never overtaken by an event that arrived after it.
    """
    return type(tick) in EXTERNAL_TICKS or (type(tick) is EventSent and tick.external)
