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
from ..errors import ContextSerdeError
from ._events import _converter, check_json, decode_event
from ._records import ERROR, TYPES, Field, register, structure

TAG = "tick"


def _decode_pairs(data: Any, path: str) -> tuple[tuple[str, Any], ...]:
    if not (isinstance(data, list) and all(isinstance(p, list) and len(p) == 2 for p in data)):
        raise ContextSerdeError(f"{path} must be a list of [field, value] pairs")
    return tuple((str(key), value) for key, value in data)


_EVENT = Field(None, decode_event)
_PAIRS = Field(lambda pairs: [[key, value] for key, value in pairs], _decode_pairs)
"""``WaitStarted.requirements``: (field, value) pairs, the values as they are."""

register(RunStarted, TAG, "RunStarted", start_event=_EVENT)
register(RunResumed, TAG, "RunResumed")
register(EventSent, TAG, "EventSent", event=_EVENT, added=("worker_id",))
register(StepCompleted, TAG, "StepCompleted", output=_EVENT.optional())
register(
    StepFailed,
    TAG,
    "StepFailed",
    error=ERROR,
    failure_event=_EVENT.optional(),
    added=("started_at",),
)
register(EventCollected, TAG, "EventCollected", event=_EVENT, expected=TYPES)
register(
    WaitStarted,
    TAG,
    "WaitStarted",
    event_types=TYPES,
    requirements=_PAIRS,
    waiter_event=_EVENT.optional(),
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
