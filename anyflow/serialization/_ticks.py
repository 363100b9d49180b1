"""Ticks to and from JSON-safe data: the records of a run's journal.

A tick is written as ``{"tick": "<class name>", ...fields}``.  Events go through
the event codec, event types by their ``module:qualname``, exceptions as their
type name and message (read back as ``SavedError``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

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
from ._events import check_json, decode_event, encode_event, event_type, type_name
from ._state import SavedError

_TICKS: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        RunStarted,
        RunResumed,
        EventSent,
        StepCompleted,
        StepFailed,
        EventCollected,
        WaitStarted,
        WaitAbandoned,
        CancelRequested,
        TimerFired,
    )
}

# How each kind of field is written and read: (encode, decode).
_Codec = tuple[Callable[[Any, str], Any], Callable[[Any, str], Any]]


def _optional(codec: _Codec) -> _Codec:
    encode, decode = codec
    return (
        lambda v, p: None if v is None else encode(v, p),
        lambda v, p: None if v is None else decode(v, p),
    )


def _encode_error(error: Any, path: str) -> dict[str, str]:
    name = getattr(error, "type_name", type(error).__name__)
    return {"type": name, "message": str(error)}


def _decode_error(data: Any, path: str) -> SavedError:
    if not (isinstance(data, dict) and set(data) == {"type", "message"}):
        raise ContextSerdeError(f"expected an error {{'type', 'message'}} at {path}")
    return SavedError(str(data["type"]), str(data["message"]))


def _plain(kind: type | tuple[type, ...]) -> _Codec:
    kinds = kind if isinstance(kind, tuple) else (kind,)

    def decode(value: Any, path: str) -> Any:
        # bool is an int to isinstance, but true is not a worker id.
        if type(value) not in kinds:
            raise ContextSerdeError(f"{path} has a {type(value).__name__}, which does not fit")
        return value

    return (lambda v, p: v, decode)


_EVENT: _Codec = (encode_event, decode_event)
_TYPES: _Codec = (
    lambda v, p: [type_name(t) for t in v],
    lambda v, p: tuple(event_type(name, f"{p}[{i}]") for i, name in enumerate(v)),
)
_PAIRS: _Codec = (
    lambda v, p: [[key, value] for key, value in v],
    lambda v, p: tuple((str(pair[0]), pair[1]) for pair in v),
)
_NUMBER = _plain((int, float))
_FIELDS: dict[str, _Codec] = {
    "start_event": _EVENT,
    "event": _EVENT,
    "output": _optional(_EVENT),
    "waiter_event": _optional(_EVENT),
    "failure_event": _optional(_EVENT),
    "error": (_encode_error, _decode_error),
    "expected": _TYPES,
    "event_types": _TYPES,
    "requirements": _PAIRS,
    "now": _NUMBER,
    "retry_delay": _optional(_NUMBER),
    "timeout": _optional(_NUMBER),
    "worker_id": _plain(int),
    "external": _plain(bool),
    "recovered": _plain(bool),
    "step": _optional(_plain(str)),
    "buffer_id": _plain(str),
    "waiter_id": _plain(str),
    "timer_id": _plain(str),
}


_ADDED: dict[tuple[type, str], _Codec] = {
    (EventSent, "worker_id"): _optional(_plain(int)),
}
"""Fields added after journals were first written, with their codecs.  Such a
field is written only when it differs from its default, and read as its
default when absent, so a journal written before it still reads (and a tick
that does not use it is written as it always was)."""

_NO_DEFAULT = object()

_LAYOUTS: dict[type, tuple[tuple[str, _Codec, Any], ...]] = {
    cls: tuple(
        (
            field.name,
            _ADDED.get((cls, field.name), _FIELDS[field.name]),
            field.default if (cls, field.name) in _ADDED else _NO_DEFAULT,
        )
        for field in attrs.fields(cls)
    )
    for cls in _TICKS.values()
}
"""Per tick class: (field name, codec, default of an added field or _NO_DEFAULT)."""


def encode_tick(tick: Tick, path: str = "$") -> dict[str, Any]:
    """``tick`` as JSON-safe data.

    :raises ContextSerdeError: naming the path of a value JSON cannot hold.
    """
    data: dict[str, Any] = {"tick": type(tick).__name__}
    for name, (encode, _), default in _LAYOUTS[type(tick)]:
        value = getattr(tick, name)
        if default is _NO_DEFAULT or value != default:
            data[name] = encode(value, f"{path}.{name}")
    check_json(data, path)
    return data


def decode_tick(data: Any, path: str = "$") -> Tick:
    """The tick ``data`` describes.

    :raises ContextSerdeError: naming the path of what is wrong.
    """
    if not isinstance(data, dict) or data.get("tick") not in _TICKS:
        raise ContextSerdeError(f"expected a tick at {path}, got {str(data)[:60]}")
    cls = _TICKS[data["tick"]]
    layout = _LAYOUTS[cls]
    unknown = set(data) - {name for name, _, _ in layout} - {"tick"}
    if unknown:
        raise ContextSerdeError(f"unknown fields of {cls.__name__} at {path}: {sorted(unknown)}")
    values = {}
    for name, (_, decode), default in layout:
        if name in data:
            values[name] = decode(data[name], f"{path}.{name}")
        elif default is _NO_DEFAULT:
            raise ContextSerdeError(f"missing {path}.{name}")
    tick: Tick = cls(**values)
    return tick
