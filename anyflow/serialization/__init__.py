"""JSON-safe data for events and run state (``ctx.to_dict()`` / ``Context.from_dict``),
and for the ticks and outcomes a journal records."""

from __future__ import annotations

from ._events import decode_event as decode_event
from ._events import decode_fields as decode_fields
from ._events import decode_value as decode_value
from ._events import encode_event as encode_event
from ._events import encode_fields as encode_fields
from ._events import encode_value as encode_value
from ._events import type_name as type_name
from ._outcomes import decode_outcome as decode_outcome
from ._outcomes import encode_outcome as encode_outcome
from ._records import SavedError as SavedError
from ._schema import event_schema as event_schema
from ._state import decode_state as decode_state
from ._state import encode_state as encode_state
from ._ticks import decode_tick as decode_tick
from ._ticks import encode_tick as encode_tick

__all__ = [
    "SavedError",
    "decode_event",
    "decode_fields",
    "decode_outcome",
    "decode_state",
    "decode_tick",
    "decode_value",
    "encode_event",
    "encode_fields",
    "encode_outcome",
    "encode_state",
    "encode_tick",
    "encode_value",
    "event_schema",
    "type_name",
]
