"""Tagged records on the event converter: how ticks and outcomes are written.

A record is ``{"<tag>": "<kind>", ...fields}``, its fields in the order the
class declares them, by hooks that cattrs generates for the class.  Plain
values are written as they are; a field that holds more is given a
``Field`` (events through the event codec, exceptions as their type name and
message, ...).  Numbers are read back as written (an int stays an int).

Every field must be in a record, except those ``added`` after records were
first written (written only when set, read as their default when absent) and
those ``omitted`` (never written).  A record that does not read is read again
field by field to say where, by JSON path (cattrs's hooks take no path).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ..errors import ContextSerdeError
from ._events import _converter, event_type
from ._state import SavedError


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
    return SavedError(str(data["type"]), str(data["message"]))


def _decode_number(data: Any, path: str) -> int | float:
    # bool is an int to isinstance, but true is not a time.
    if type(data) not in (int, float):
        raise ContextSerdeError(f"{path} has a {type(data).__name__}, which does not fit")
    number: int | float = data
    return number


def _decode_types(data: Any, path: str) -> tuple[type, ...]:
    if not isinstance(data, list):
        raise ContextSerdeError(f"{path} must be a list of event type names")
    return tuple(event_type(name, f"{path}[{i}]") for i, name in enumerate(data))


ERROR = Field(encode_error, _decode_error)
"""An exception, as its type name and message (read back as ``SavedError``)."""
TYPES = Field(lambda types: [f"{t.__module__}:{t.__qualname__}" for t in types], _decode_types)
"""Event classes, by ``module:qualname``."""
_NUMBERS = {
    float: Field(None, _decode_number),
    float | None: Field(None, _decode_number).optional(),
}


@attrs.frozen
class _Kind:
    cls: type
    fields: dict[str, Field | None]
    """Every field written, in order: its ``Field``, or None for a plain value."""
    added: frozenset[str]
    structure: Callable[[Any, type], Any]
    """The hook the converter has for ``cls`` (called directly: a record's
    class is known from its tag)."""


_KINDS: dict[str, dict[str, _Kind]] = {}
"""Per tag, the record classes by kind."""


def register(
    cls: type,
    tag: str,
    kind: str,
    *,
    added: tuple[str, ...] = (),
    omitted: tuple[str, ...] = (),
    **special: Field,
) -> None:
    """Teach the converter the record class ``cls``, written with ``tag: kind``.

    ``special`` are its fields that are not plain values; ``added`` and
    ``omitted`` as the module says.
    """
    attrs.resolve_types(cls)
    fields: dict[str, Field | None] = {
        f.name: special.get(f.name) or _NUMBERS.get(f.type)
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
    keys = frozenset(fields) | {tag}
    required = keys - frozenset(added)

    def unstructure(record: Any) -> dict[str, Any]:
        return {tag: kind, **unstructure_fields(record)}

    def structure(data: Any, _: type) -> Any:
        if not required <= data.keys() <= keys:
            raise ValueError(f"the keys of {cls.__name__} are {sorted(keys)}")
        return structure_fields(data, cls)

    _converter.register_unstructure_hook(cls, unstructure)
    _converter.register_structure_hook(cls, structure)
    _KINDS.setdefault(tag, {})[kind] = _Kind(cls, fields, frozenset(added), structure)


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
        raise ContextSerdeError(explain(data, tag, what, path, exc)) from exc


def explain(data: Any, tag: str, what: str, path: str, exc: Exception) -> str:
    """What is wrong with ``data``, which did not read as a record: the first
    problem in the order of its class's fields, naming its path."""
    kind = _KINDS[tag].get(data.get(tag, "")) if isinstance(data, dict) else None
    if kind is None:
        return f"expected {what} at {path}, got {str(data)[:60]}"
    name = kind.cls.__name__
    unknown = set(data) - set(kind.fields) - {tag}
    if unknown:
        return f"unknown fields of {name} at {path}: {sorted(unknown)}"
    for field in attrs.fields(kind.cls):
        if field.name not in kind.fields:
            continue
        where = f"{path}.{field.name}"
        if field.name not in data:
            if field.name in kind.added:
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
