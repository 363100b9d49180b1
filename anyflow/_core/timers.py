"""Timer ids: which timer a ``ScheduleTimer``, ``CancelTimer`` or ``TimerFired``
is about.

At the runtime's interface and in journals a timer id is a string: the run's
deadline is ``"run-timeout"``, the others a prefix and a number (``"retry-3"``,
``"wait-3"``, ``"step-3"``, ``"saved-0"``).  The reducer makes them with
``timer_id`` and reads them with ``timer_of``; nothing else spells them.
"""

from __future__ import annotations

import enum

from .state import RUN_TIMEOUT_TIMER


class Timer(enum.Enum):
    """What a timer guards; its value is how the timer's id starts."""

    RUN_TIMEOUT = RUN_TIMEOUT_TIMER
    """The run's deadline (the id is this alone)."""
    RETRY = "retry-"
    """A failed delivery's retry delay, numbered by the failed attempt's worker."""
    SAVED_RETRY = "saved-"
    """A retry delay restored from a saved context, numbered by its place there."""
    WAIT = "wait-"
    """A ``wait_for_event`` timeout, numbered by the waiting attempt's worker."""
    STEP = "step-"
    """A step attempt's timeout, numbered by its worker."""


_NUMBERED = {kind.value: kind for kind in Timer if kind is not Timer.RUN_TIMEOUT}


def timer_id(kind: Timer, number: int) -> str:
    """The id of the ``kind`` timer numbered ``number``."""
    return f"{kind.value}{number}"


def timer_of(timer_id: str) -> tuple[Timer, int | None] | None:
    """What ``timer_id`` guards, and its number (None for the run's deadline);
    None for an id the reducer does not make."""
    if timer_id == RUN_TIMEOUT_TIMER:
        return Timer.RUN_TIMEOUT, None
    prefix, dash, number = timer_id.partition("-")
    kind = _NUMBERED.get(prefix + dash)
    if kind is None or not (number.isascii() and number.isdigit()):
        return None
    return kind, int(number)
