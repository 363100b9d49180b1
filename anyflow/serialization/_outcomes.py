"""How a run ended, to and from JSON-safe data: a journal's outcome record.

An outcome is written as ``{"status": "<kind>", ...fields}`` (see
``_records``): ``completed`` with its stop event; ``failed`` with the step,
the error (its type name and message, read back as ``SavedError``) and the
attempts; ``timed_out`` with the timeout and the steps still active;
``broken`` with the step and the message (its exception stays in the
process that raised it); ``cancelled`` alone.
"""

from __future__ import annotations

from typing import Any

from .._core.state import Broken, Cancelled, Completed, Failed, Outcome, TimedOut
from ._events import _converter, decode_event, encode_event
from ._records import ERROR, FLOAT, Field, register, structure

TAG = "status"

# The stop event is checked to be JSON-safe as it is written; the other fields
# are plain values the reducer made.
_STOP_EVENT = Field(lambda event: encode_event(event, "$.stop_event"), decode_event)

register(Completed, TAG, "completed", stop_event=_STOP_EVENT)
register(Failed, TAG, "failed", error=ERROR)
register(TimedOut, TAG, "timed_out", timeout=FLOAT)
register(Broken, TAG, "broken", omitted=("error",))
register(Cancelled, TAG, "cancelled")


def encode_outcome(outcome: Outcome) -> dict[str, Any]:
    """``outcome`` as JSON-safe data.

    :raises ContextSerdeError: naming the path of a value JSON cannot hold.
    """
    data: dict[str, Any] = _converter.unstructure(outcome)
    return data


def decode_outcome(data: Any, path: str = "$") -> Outcome:
    """The outcome ``data`` describes.

    :raises ContextSerdeError: naming the path of what is wrong.
    """
    outcome: Outcome = structure(data, TAG, "an outcome", path)
    return outcome
