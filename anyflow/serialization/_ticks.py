"""Ticks to and from JSON-safe data: the records of a run's journal.

A tick is written as ``{"tick": "<class name>", ...fields}`` (see
``_records``): events through the event codec, event types by their
``module:qualname``, exceptions as their type name and message (read back as
``SavedError``).  ``EventSent.worker_id`` came after the first journals: it
is written only when set, and read as None when absent.
"""

from __future__ import annotations

from typing import Any

from .._core.ticks import (
    CancelRequested,
    EventCollected,
    EventSent,
    RunResumed,
    RunStarted,
    StepCompleted,
    StepFailed,
    Tick,
    TimerFired,
    WaitAbandoned,
    WaitStarted,
)
from ._events import _converter, check_json
from ._records import ERROR, EVENT, PAIRS, TYPES, register, structure

TAG = "tick"

register(RunStarted, TAG, "RunStarted", start_event=EVENT)
register(RunResumed, TAG, "RunResumed")
register(EventSent, TAG, "EventSent", event=EVENT, added=("worker_id",))
register(StepCompleted, TAG, "StepCompleted", output=EVENT.optional())
register(
    StepFailed,
    TAG,
    "StepFailed",
    error=ERROR,
    failure_event=EVENT.optional(),
    added=("started_at",),
)
register(EventCollected, TAG, "EventCollected", event=EVENT, expected=TYPES)
register(
    WaitStarted,
    TAG,
    "WaitStarted",
    event_types=TYPES,
    requirements=PAIRS,
    waiter_event=EVENT.optional(),
)
register(WaitAbandoned, TAG, "WaitAbandoned")
register(CancelRequested, TAG, "CancelRequested")
register(TimerFired, TAG, "TimerFired")


def encode_tick(tick: Tick, path: str = "$") -> dict[str, Any]:
    """``tick`` as JSON-safe data.

    :raises ContextSerdeError: naming the path of a value JSON cannot hold.
    """
    data: dict[str, Any] = _converter.unstructure(tick)
    check_json(data, path)
    return data


def decode_tick(data: Any, path: str = "$") -> Tick:
    """The tick ``data`` describes.

    :raises ContextSerdeError: naming the path of what is wrong.
    """
    tick: Tick = structure(data, TAG, "a tick", path)
    return tick
