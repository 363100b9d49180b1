"""Records on the event converter: how ticks, outcomes and the parts of a
saved run state are written.

A record is written as a dict of its fields, in the order its class declares
them, by hooks that cattrs generates for the class; a tagged record (a tick,
an outcome) starts with ``"<tag>": "<kind>"``, which says its class.  Plain
values are written as they are; a field that holds more is given a ``Field``
(events through the event codec, exceptions as their type name and message,
...), and a field whose class is a record is written as that record.  Numbers
are read back as written (an int stays an int).

Every field must be in a record, except those ``added`` after records were
first written (written only when set, read as their default when absent),
those ``absent`` from older records (always written, read as their default
when absent) and those ``omitted`` (never written).  A key that is not a
field is refused, unless the record was registered to ``ignore_unknown`` keys
(data from another program, such as a server's answers, which a newer version
may extend).  A record that does not read is read again field by field to say
where, by JSON path (cattrs's hooks take no path).

The layers above the engine declare and read their records through
``anyflow.serialization.records``.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

import attrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ..errors import ContextSerdeError
from ._events import _converter, decode_event, event_type


class SavedError(Exception):
    """An exception from a saved run, brought back as its type name and message
    (the original class and traceback stay in the process that raised it)."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(message)
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"SavedError({self.type_name}: {self.args[0]})"


@attrs.frozen
class Field:
    """How a field that is not a plain JSON value is written and read.

    ``decode`` names ``path`` in its errors; the hook made from it reads at
    ``$``, and ``explain`` calls it again with the field's path.
    """

    encode: Callable[[Any], Any] | None
    """None: as the converter writes the value (an event, through its hook)."""
    decode: Callable[[Any, str], Any]

    def optional(self) -> Field:
        encode, decode = self.encode, self.decode
        return Field(
            None if encode is None else lambda v: None if v is None else encode(v),
            lambda v, p: None if v is None else decode(v, p),
        )


def encode_error(error: Any) -> dict[str, str]:
    return {"type": getattr(error, "type_name", type(error).__name__), "message": str(error)}


def _decode_error(data: Any, path: str) -> SavedError:
    if not (isinstance(data, dict) and set(data) == {"type", "message"}):
        raise ContextSerdeError(f"expected an error {{'type', 'message'}} at {path}")
    for key in ("type", "message"):
        if not isinstance(data[key], str):
            raise ContextSerdeError(f"{path}.{key} must be a string, not {data[key]!r}")
    return SavedError(data["type"], data["message"])


def _decode_number(data: Any, path: str) -> int | float:
    # bool is an int to isinstance, but true is not a time.
    if type(data) not in (int, float):
        raise ContextSerdeError(f"{path} has a {type(data).__name__}, which does not fit")
    number: int | float = data
    return number


def _decode_float(data: Any, path: str) -> float:
    return float(_decode_number(data, path))


def _decode_types(data: Any, path: str) -> tuple[type, ...]:
    if not isinstance(data, list):
        raise ContextSerdeError(f"{path} must be a list of event type names")
    return tuple(event_type(name, f"{path}[{i}]") for i, name in enumerate(data))


def encode_events(events: Any) -> list[Any]:
    return [_converter.unstructure(ev) for ev in events]


def decode_events(data: Any, path: str) -> tuple[Any, ...]:
    if not isinstance(data, list):
        raise ContextSerdeError(f"{path} must be a list of events, not {type(data).__name__}")
    return tuple(decode_event(ev, f"{path}[{i}]") for i, ev in enumerate(data))


def _decode_event_map(data: Any, path: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ContextSerdeError(f"{path} must be an object of events, not {type(data).__name__}")
    return {key: decode_event(ev, f"{path}.{key}") for key, ev in data.items()}


def _decode_pairs(data: Any, path: str) -> tuple[tuple[str, Any], ...]:
    if not (isinstance(data, list) and all(isinstance(p, list) and len(p) == 2 for p in data)):
        raise ContextSerdeError(f"{path} must be a list of [field, value] pairs")
    return tuple((str(key), value) for key, value in data)


ERROR = Field(encode_error, _decode_error)
"""An exception, as its type name and message (read back as ``SavedError``)."""
TYPES = Field(lambda types: [f"{t.__module__}:{t.__qualname__}" for t in types], _decode_types)
"""Event classes, by ``module:qualname``."""
EVENT = Field(None, decode_event)
"""An event (a field typed ``Any``), through the event codec."""
EVENTS = Field(encode_events, decode_events)
"""Events, as a list."""
EVENT_MAP = Field(
    lambda events: {key: _converter.unstructure(ev) for key, ev in events.items()},
    _decode_event_map,
)
"""Events by name, as an object."""
PAIRS = Field(lambda pairs: [[key, value] for key, value in pairs], _decode_pairs)
"""(field, value) pairs, as two-item lists, the values as they are."""
FLOAT = Field(None, _decode_float)
"""A number, read back as a float (an int in the data too)."""
_NUMBERS = {
    float: Field(None, _decode_number),
    float | None: Field(None, _decode_number).optional(),
}


@attrs.frozen
class _Kind:
    cls: type
    tag: str | None
    fields: dict[str, Field | None]
    """Every field written, in order: its ``Field``, or None for a plain value."""
    optional: frozenset[str]
    """Fields read as their default when absent (``added`` and ``absent``)."""
    ignore_unknown: bool
    """Keys that are not fields are dropped, not refused."""
    structure: Callable[[Any, type], Any]
    """The hook the converter has for ``cls`` (called directly: a record's
    class is known from its tag, or from where it is)."""


_KINDS: dict[str, dict[str, _Kind]] = {}
"""Per tag, the tagged record classes by kind."""
_RECORDS: dict[type, _Kind] = {}
"""Every record class."""


def register(
    cls: type,
    tag: str | None = None,
    kind: str | None = None,
    *,
    added: tuple[str, ...] = (),
    absent: tuple[str, ...] = (),
    omitted: tuple[str, ...] = (),
    ignore_unknown: bool = False,
    **special: Field,
) -> None:
    """Teach the converter the record class ``cls``, written with ``tag: kind``
    (or, with neither, untagged: read where its class is known).

    ``special`` are its fields that are not plain values; ``added``,
    ``absent``, ``omitted`` and ``ignore_unknown`` as the module says.
    """
    attrs.resolve_types(cls)
    fields: dict[str, Field | None] = {
        f.name: special.get(f.name) or _NUMBERS.get(f.type) or _nested(f.type)
        for f in attrs.fields(cls)
        if f.name not in omitted
    }
    overrides: dict[str, Any] = {name: override(omit=True) for name in omitted}
    for name, codec in fields.items():
        if codec is not None or name in added:
            decode = None if codec is None else codec.decode
            overrides[name] = override(
                unstruct_hook=None if codec is None else codec.encode,
                struct_hook=None if decode is None else _at_root(decode),
                omit_if_default=name in added or None,
            )
    unstructure_fields: Callable[[Any], dict[str, Any]] = make_dict_unstructure_fn(
        cls, _converter, **overrides
    )
    structure_fields: Callable[[Any, type], Any] = make_dict_structure_fn(
        cls,
        _converter,
        _cattrs_forbid_extra_keys=False,  # checked below, with the missing ones
        _cattrs_detailed_validation=False,  # explain() says what is wrong
        **overrides,
    )
    keys = frozenset(fields) if tag is None else frozenset(fields) | {tag}
    required = keys - frozenset(added) - frozenset(absent)

    def structure(data: Any, _: type) -> Any:
        if not required <= data.keys() <= keys and not (ignore_unknown and required <= data.keys()):
            raise ValueError(f"the keys of {cls.__name__} are {sorted(keys)}")
        return structure_fields(data, cls)

    if tag is None:
        _converter.register_unstructure_hook(cls, unstructure_fields)
    else:

        def unstructure(record: Any) -> dict[str, Any]:
            return {tag: kind, **unstructure_fields(record)}

        _converter.register_unstructure_hook(cls, unstructure)
    _converter.register_structure_hook(cls, structure)
    optional = frozenset(added) | frozenset(absent)
    record = _Kind(cls, tag, fields, optional, ignore_unknown, structure)
    _RECORDS[cls] = record
    if tag is not None:
        _KINDS.setdefault(tag, {})[str(kind)] = record


def _nested(annotation: Any) -> Field | None:
    """The ``Field`` of a field that holds an untagged record (``R``), maybe
    none (``R | None``) or a tuple of them (``tuple[R, ...]``): the record's
    own hooks, and its paths when it does not read."""
    args = typing.get_args(annotation)
    if len(args) == 2 and type(None) in args:  # R | None
        inner = _nested(next(a for a in args if a is not type(None)))
        return None if inner is None else inner.optional()
    if typing.get_origin(annotation) is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _untagged(args[0])
        if item is None:
            return None

        def decode_all(data: Any, path: str) -> tuple[Any, ...]:
            if not isinstance(data, list):
                raise ContextSerdeError(f"{path} must be a list, not {type(data).__name__}")
            return tuple(read(value, item, f"{path}[{i}]") for i, value in enumerate(data))

        return Field(lambda values: [_converter.unstructure(v) for v in values], decode_all)
    record = _untagged(annotation)
    if record is None:
        return None
    return Field(None, lambda data, path: read(data, record, path))


def _untagged(annotation: Any) -> type | None:
    record = _RECORDS.get(annotation) if isinstance(annotation, type) else None
    return record.cls if record is not None and record.tag is None else None


def _at_root(decode: Callable[[Any, str], Any]) -> Callable[[Any, Any], Any]:
    return lambda value, _: decode(value, "$")


def structure(data: Any, tag: str, what: str, path: str) -> Any:
    """The record ``data`` describes (``what``: "a tick"), of the kind its
    ``tag`` names.

    :raises ContextSerdeError: naming the path of what is wrong.
    """
    kind = _KINDS[tag].get(data.get(tag, "")) if isinstance(data, dict) else None
    try:
        if kind is None:
            raise ValueError("no kind")
        return kind.structure(data, kind.cls)
    except Exception as exc:
        if kind is None:
            message = f"expected {what} at {path}, got {str(data)[:60]}"
        else:
            message = _explain(data, kind, path, exc)
        raise ContextSerdeError(message) from exc


def read(data: Any, cls: type, path: str) -> Any:
    """The untagged record of class ``cls`` that ``data`` describes.

    :raises ContextSerdeError: naming the path of what is wrong.
    """
    kind = _RECORDS[cls]
    try:
        return kind.structure(data, cls)
    except Exception as exc:
        if not isinstance(data, dict):
            message = f"expected {cls.__name__} (an object) at {path}, got {str(data)[:60]}"
        else:
            message = _explain(data, kind, path, exc)
        raise ContextSerdeError(message) from exc


def _explain(data: dict[str, Any], kind: _Kind, path: str, exc: Exception) -> str:
    """What is wrong with ``data``, which did not read as a ``kind`` record:
    the first problem in the order of its class's fields, naming its path."""
    name = kind.cls.__name__
    unknown = set(data) - set(kind.fields) - {kind.tag}
    if unknown and not kind.ignore_unknown:
        return f"unknown fields of {name} at {path}: {sorted(unknown)}"
    for field in attrs.fields(kind.cls):
        if field.name not in kind.fields:
            continue
        where = f"{path}.{field.name}"
        if field.name not in data:
            if field.name in kind.optional:
                continue
            return f"missing {where}"
        value, codec = data[field.name], kind.fields[field.name]
        try:
            if codec is None:
                _converter.structure(value, field.type)
            else:
                codec.decode(value, where)
        except ContextSerdeError as error:
            return str(error)
        except Exception:
            return f"{where} has a {type(value).__name__}, which does not fit"
    return f"cannot read {name} at {path}: {exc}"
