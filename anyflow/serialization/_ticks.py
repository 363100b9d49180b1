"""Ticks to and from JSON-safe data: the records of a run's journal.

A tick is written as ``{"tick": "<class name>", ...fields}``, its fields in
the order the class declares them, by hooks on the event converter.  Plain
values are written as they are; the fields that hold more say how in
``_register`` below: events through the event codec, event types by their
``module:qualname``, exceptions as their type name and message (read back as
``SavedError``).  Numbers are read back as written (an int stays an int).

Every field must be in a record, except one added after journals were first
written (``EventSent.worker_id``): it is written only when set, and read as
its default when absent, so older journals still read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

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
from ._events import _converter, check_json, decode_event, event_type, type_name
from ._state import SavedError

TAG = "tick"


@attrs.frozen
class _Field:
    """How a field that is not a plain JSON value is written and read.

    ``decode`` names ``path`` in its errors; cattrs's hooks take no path, so
    the hook made from it reads at ``$``, and a record that fails is read
    again field by field, with paths, to say where (``_explain``).
    """

    encode: Callable[[Any], Any] | None
    """None: as the converter writes the value (an event, through its hook)."""
    decode: Callable[[Any, str], Any]

    def optional(self) -> _Field:
        encode, decode = self.encode, self.decode
        return _Field(
            None if encode is None else lambda v: None if v is None else encode(v),
            lambda v, p: None if v is None else decode(v, p),
        )

    def override(self, omit_if_default: bool = False) -> Any:
        decode = self.decode
        return override(
            unstruct_hook=self.encode,
            struct_hook=lambda v, _: decode(v, "$"),
            omit_if_default=omit_if_default or None,
        )


def _encode_error(error: Any) -> dict[str, str]:
    name = getattr(error, "type_name", type(error).__name__)
    return {"type": name, "message": str(error)}


def _decode_error(data: Any, path: str) -> SavedError:
    if not (isinstance(data, dict) and set(data) == {"type", "message"}):
        raise ContextSerdeError(f"expected an error {{'type', 'message'}} at {path}")
    return SavedError(str(data["type"]), str(data["message"]))


def _decode_types(data: Any, path: str) -> tuple[type, ...]:
    if not isinstance(data, list):
        raise ContextSerdeError(f"{path} must be a list of event type names")
    return tuple(event_type(name, f"{path}[{i}]") for i, name in enumerate(data))


def _decode_pairs(data: Any, path: str) -> tuple[tuple[str, Any], ...]:
    if not (isinstance(data, list) and all(isinstance(p, list) and len(p) == 2 for p in data)):
        raise ContextSerdeError(f"{path} must be a list of [field, value] pairs")
    return tuple((str(key), value) for key, value in data)


def _decode_number(data: Any, path: str) -> int | float:
    # bool is an int to isinstance, but true is not a time.
    if type(data) not in (int, float):
        raise ContextSerdeError(f"{path} has a {type(data).__name__}, which does not fit")
    number: int | float = data
    return number


_EVENT = _Field(None, decode_event)
_ERROR = _Field(_encode_error, _decode_error)
_TYPES = _Field(lambda types: [type_name(t) for t in types], _decode_types)
_PAIRS = _Field(lambda pairs: [[key, value] for key, value in pairs], _decode_pairs)
_NUMBER = _Field(None, _decode_number)
_NUMBERS = {float: _NUMBER, float | None: _NUMBER.optional()}
"""Fields of these types hold times and delays, read back as they were written."""

_TICKS: dict[str, type] = {}
_FIELDS: dict[type, dict[str, _Field | None]] = {}
"""Per tick class, its fields in order: a ``_Field``, or None for a plain value."""
_ADDED: dict[type, frozenset[str]] = {}
"""Per tick class, the fields that older journals may lack."""


def _register(cls: type, added: tuple[str, ...] = (), **special: _Field) -> None:
    """Teach the converter the tick ``cls``, whose fields ``special`` are not
    plain values and whose fields ``added`` came after the first journals."""
    attrs.resolve_types(cls)
    fields: dict[str, _Field | None] = {}
    for field in attrs.fields(cls):
        fields[field.name] = special.get(field.name) or _NUMBERS.get(field.type)
    overrides = {
        name: codec.override(omit_if_default=name in added)
        for name, codec in fields.items()
        if codec is not None
    }
    overrides.update({name: override(omit_if_default=True) for name in added if not fields[name]})
    unstructure_fields: Callable[[Any], dict[str, Any]] = make_dict_unstructure_fn(
        cls, _converter, **overrides
    )
    # Keys are checked here, and a record that fails is explained by _explain.
    structure_fields: Callable[[Any, type], Any] = make_dict_structure_fn(
        cls,
        _converter,
        _cattrs_forbid_extra_keys=False,
        _cattrs_detailed_validation=False,
        **overrides,
    )
    name = cls.__name__
    keys = frozenset(fields) | {TAG}
    required = frozenset(fields) - frozenset(added)

    def unstructure(tick: Any) -> dict[str, Any]:
        return {TAG: name, **unstructure_fields(tick)}

    def structure(data: Any, _: type) -> Any:
        if data.keys() - keys or required - data.keys():
            raise ValueError(f"the fields of {name} are not {sorted(keys)}")
        return structure_fields(data, cls)

    _converter.register_unstructure_hook(cls, unstructure)
    _converter.register_structure_hook(cls, structure)
    _TICKS[name] = cls
    _FIELDS[cls] = fields
    _ADDED[cls] = frozenset(added)


_register(RunStarted, start_event=_EVENT)
_register(RunResumed)
_register(EventSent, event=_EVENT, added=("worker_id",))
_register(StepCompleted, output=_EVENT.optional())
_register(StepFailed, error=_ERROR, failure_event=_EVENT.optional())
_register(EventCollected, event=_EVENT, expected=_TYPES)
_register(WaitStarted, event_types=_TYPES, requirements=_PAIRS, waiter_event=_EVENT.optional())
_register(WaitAbandoned)
_register(CancelRequested)
_register(TimerFired)


def _tick_class(data: Any) -> type | None:
    """The tick class ``data`` names, if it is a tick's data."""
    return _TICKS.get(data.get(TAG, "")) if isinstance(data, dict) else None


def _structure_tick(data: Any, _: Any) -> Tick:
    """A tick of the class its ``"tick"`` key names."""
    cls = _tick_class(data)
    if cls is None:
        raise ValueError(f"expected a tick, got {str(data)[:60]}")
    tick: Tick = _converter.structure(data, cls)
    return tick


_converter.register_structure_hook_func(lambda t: t == Tick, _structure_tick)


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
    try:
        return _structure_tick(data, Tick)
    except Exception as exc:
        raise ContextSerdeError(_explain(data, path, exc)) from exc


def _explain(data: Any, path: str, exc: Exception) -> str:
    """What is wrong with ``data``, which did not read as a tick: the first
    problem in the order of its class's fields, naming its path."""
    cls = _tick_class(data)
    if cls is None:
        return f"expected a tick at {path}, got {str(data)[:60]}"
    fields = _FIELDS[cls]
    unknown = set(data) - set(fields) - {TAG}
    if unknown:
        return f"unknown fields of {cls.__name__} at {path}: {sorted(unknown)}"
    for field in attrs.fields(cls):
        where = f"{path}.{field.name}"
        if field.name not in data:
            if field.name in _ADDED[cls]:
                continue
            return f"missing {where}"
        value = data[field.name]
        codec = fields[field.name]
        try:
            if codec is None:
                _converter.structure(value, field.type)
            else:
                codec.decode(value, where)
        except ContextSerdeError as error:
            return str(error)
        except Exception:
            return f"{where} has a {type(value).__name__}, which does not fit"
    return f"cannot read {cls.__name__} at {path}: {exc}"
