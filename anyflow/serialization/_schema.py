"""JSON Schemas of event classes, for clients that build events by hand.

The server publishes, for each event a workflow takes or gives, a schema of its
fields (the ``value`` of an event envelope), so that a client or the inspector
can draw a form and check input before sending it.  anyflow events are attrs
classes, not pydantic models, so the schema is derived here from the attrs
fields and their annotations, in draft 2020-12 style::

    {"type": "object", "title": "Joke", "properties": {...}, "required": [...],
     "additionalProperties": false}

What a schema promises follows what ``anyflow.serialization`` reads back, not
what Python would allow:

* ``bool`` is not an ``integer`` (the decoder rejects ``True`` for an ``int``
  field), while an ``int`` is a ``number``;
* an event nested in a field travels tagged, as
  ``{"__anyflow_event__": "module:qualname", "fields": {...}}``, so that is the
  shape its schema describes (a field typed ``Event`` itself takes any event, so
  its ``fields`` are left unconstrained);
* events take free fields beside the declared ones:
  ``"additionalProperties": true``; an event class that says ``open=False``,
  and every nested attrs class, rejects unknown keys (the converter forbids
  extra keys).

A schema is advice for clients; the decoder stays the judge.  So an annotation
that cannot be resolved (a class local to a function, named in a string) or a
type with no JSON form gives ``{}``, "anything", rather than an error that would
take the whole workflow's description down with it.

Titles name public classes only: a private class (``_Helper``) gets no title,
or, at the top, the name of the nearest public event class it derives from, so
implementation details never show up in a client's forms.
"""

from __future__ import annotations

import collections.abc
import copy
import enum
import functools
import inspect
import math
import sys
import types
import typing
from typing import Any, Literal, Union

import attrs

from .._event_fields import CONSTRAINT_KEY, DESCRIPTION_KEYS
from ..events import Event

__all__ = ["event_schema"]

_TAG = "__anyflow_event__"
"""The key that marks an event nested in another's fields (``anyflow.serialization``)."""

_UNRESOLVED: Any = object()
"""Stands for an annotation that could not be resolved."""

_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    None: {"type": "null"},
}

_ARRAYS: frozenset[Any] = frozenset(
    {
        list,
        tuple,
        set,
        frozenset,
        collections.abc.Sequence,
        collections.abc.MutableSequence,
        collections.abc.Set,
        collections.abc.MutableSet,
        collections.abc.Collection,
        collections.abc.Iterable,
    }
)
_UNIQUE: frozenset[Any] = frozenset(
    {set, frozenset, collections.abc.Set, collections.abc.MutableSet}
)
_OBJECTS: frozenset[Any] = frozenset(
    {dict, collections.abc.Mapping, collections.abc.MutableMapping}
)


def event_schema(cls: type[Event]) -> dict[str, Any]:
    """The JSON Schema of the fields of event class ``cls``.

    The result is a fresh dict each call (callers may add to it).  Classes that
    refer to themselves, directly or through others, are described once under
    ``$defs`` and referred to with ``$ref``.

    :raises TypeError: if ``cls`` is not an ``Event`` subclass.
    """
    if not (isinstance(cls, type) and issubclass(cls, Event)):
        raise TypeError(f"event_schema takes an Event subclass, not {cls!r}")
    builder = _Builder(cls)
    schema = builder.fields_of(cls, top=True)
    if builder.defs:
        schema["$defs"] = builder.defs
    return schema


def _title(cls: type, *, top: bool) -> str | None:
    """The public name to show for ``cls`` (see the module docstring)."""
    if not cls.__name__.startswith("_"):
        return cls.__name__
    if top:
        for base in cls.__mro__[1:]:
            if issubclass(base, Event) and not base.__name__.startswith("_"):
                return base.__name__
    return None


def _type_hints(cls: type) -> dict[str, Any]:
    """The field annotations of attrs class ``cls``, resolved where possible.

    ``typing.get_type_hints`` resolves all or nothing; a class defined in a
    function under ``from __future__ import annotations`` may name a local class
    it cannot see, so each field is retried alone and left ``_UNRESOLVED`` if it
    still fails.
    """
    try:
        return typing.get_type_hints(cls, include_extras=True)
    except (NameError, TypeError):
        pass
    module = sys.modules.get(cls.__module__)
    globalns = dict(vars(module)) if module is not None else {}
    localns = {cls.__name__: cls}
    hints: dict[str, Any] = {}
    for field in attrs.fields(cls):
        annotation = field.type
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, globalns, localns)
            except Exception:
                annotation = _UNRESOLVED
        hints[field.name] = annotation
    return hints


_FACTORY: type[Any] = type(attrs.Factory(list))
"""The class of ``attrs.Factory(...)`` (typed as a function in attrs' stubs)."""


def _default(field: attrs.Attribute[Any]) -> tuple[bool, Any]:
    """``(True, value)`` for a default a JSON document can show, else ``(False, None)``.

    A factory is called only when it is known to be harmless: an empty
    container type, or the copy of a literal default that ``Event`` sets up for
    ``tags: list[str] = []``.
    """
    default = field.default
    if default is attrs.NOTHING:
        return False, None
    if isinstance(default, _FACTORY):
        factory = default.factory
        if factory in (list, tuple, set, frozenset, dict):
            default = factory()
        elif (
            isinstance(factory, functools.partial)
            and factory.func is copy.copy
            and len(factory.args) == 1
        ):
            default = factory.args[0]
        else:
            return False, None
    return _json_value(default)


_BOUNDS = {
    "gt": "exclusiveMinimum",
    "ge": "minimum",
    "lt": "exclusiveMaximum",
    "le": "maximum",
    "multiple_of": "multipleOf",
}
_SIZES = {"string": "Length", "array": "Items", "object": "Properties"}


def _described(prop: dict[str, Any], field: attrs.Attribute[Any]) -> dict[str, Any]:
    """``prop`` with what the field's metadata says of it: ``title``,
    ``description`` and ``examples`` (from ``attrs.field(metadata=...)`` or a
    pydantic ``Field(...)``), its bounds, and ``json_schema_extra``."""
    metadata = field.metadata
    if not metadata:
        return prop
    prop = dict(prop)
    for key in DESCRIPTION_KEYS:
        if key in metadata:
            ok, value = _json_value(metadata[key])
            if ok:
                prop[key] = value
    for name, bound in metadata.get(CONSTRAINT_KEY, ()):
        if name in _BOUNDS:
            prop[_BOUNDS[name]] = bound
        elif prop.get("type") in _SIZES:
            side = "min" if name == "min_length" else "max"
            prop[f"{side}{_SIZES[prop['type']]}"] = bound
    extra = metadata.get("json_schema_extra")
    if isinstance(extra, dict):
        prop.update(extra)
    return prop


def _json_value(value: Any) -> tuple[bool, Any]:
    """``value`` as plain JSON data, if it has a faithful JSON form."""
    if isinstance(value, enum.Enum):
        return _json_value(value.value)
    if value is None or isinstance(value, bool | int | str):
        return True, value
    if isinstance(value, float):
        return (True, value) if math.isfinite(value) else (False, None)
    if isinstance(value, set | frozenset):
        try:
            value = sorted(value)
        except TypeError:
            return False, None
    if isinstance(value, list | tuple):
        items = [_json_value(v) for v in value]
        if all(ok for ok, _ in items):
            return True, [v for _, v in items]
        return False, None
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        pairs = {k: _json_value(v) for k, v in value.items()}
        if all(ok for ok, _ in pairs.values()):
            return True, {k: v for k, (_, v) in pairs.items()}
    return False, None


class _Builder:
    """Builds one schema; remembers the classes being described to stop at cycles."""

    def __init__(self, root: type) -> None:
        self.root = root
        self.defs: dict[str, dict[str, Any]] = {}
        self._open: list[type] = []
        """Classes whose description is under way, outermost first."""
        self._recursive: dict[type, str] = {}
        """Classes met again inside their own description, and their ``$defs`` key."""

    def fields_of(self, cls: type, *, top: bool = False) -> dict[str, Any]:
        """The object schema of an attrs class's fields."""
        schema: dict[str, Any] = {"type": "object"}
        title = _title(cls, top=top)
        if title is not None:
            schema["title"] = title
        doc = cls.__dict__.get("__doc__")
        if isinstance(doc, str) and doc.strip():
            schema["description"] = inspect.cleandoc(doc)
        hints = _type_hints(cls)
        properties: dict[str, Any] = {}
        required: list[str] = []
        is_event = issubclass(cls, Event)
        self._open.append(cls)
        try:
            for field in attrs.fields(cls):
                if not field.init or (is_event and field.name == "_extra"):
                    continue
                prop = _described(self.of(hints.get(field.name, _UNRESOLVED)), field)
                has_default, default = _default(field)
                if has_default:
                    prop = {**prop, "default": default}
                elif field.default is attrs.NOTHING:
                    required.append(field.alias)
                properties[field.alias] = prop
        finally:
            self._open.pop()
        schema["properties"] = properties
        schema["required"] = required
        schema["additionalProperties"] = is_event and bool(getattr(cls, "_open", True))
        return schema

    def _object(self, cls: type) -> dict[str, Any]:
        """A nested attrs class: inline, or a ``$ref`` when it contains itself."""
        if cls is self.root:
            return {"$ref": "#"}
        if cls in self._open:
            return {"$ref": f"#/$defs/{self._def_name(cls)}"}
        schema = self.fields_of(cls)
        name = self._recursive.get(cls)
        if name is None:
            return schema
        self.defs[name] = schema
        return {"$ref": f"#/$defs/{name}"}

    def _def_name(self, cls: type) -> str:
        name = self._recursive.get(cls)
        if name is None:
            base = _title(cls, top=False) or "Object"
            name, n = base, 1
            while name in self.defs or name in self._recursive.values():
                n += 1
                name = f"{base}{n}"
            self._recursive[cls] = name
        return name

    def _event(self, cls: type[Event]) -> dict[str, Any]:
        """A nested event, in the tagged form the serializer writes."""
        fields: dict[str, Any] = {"type": "object"} if cls is Event else self._object(cls)
        return {
            "type": "object",
            "properties": {_TAG: {"type": "string"}, "fields": fields},
            "required": [_TAG, "fields"],
            "additionalProperties": False,
        }

    def of(self, annotation: Any) -> dict[str, Any]:
        """The schema of a value annotated ``annotation`` (``{}``: anything)."""
        if annotation is _UNRESOLVED:
            return {}
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin is typing.Annotated:
            return self.of(args[0])
        if _member(annotation, _SCALARS):
            return dict(_SCALARS[annotation])
        if annotation is Any or isinstance(annotation, typing.TypeVar):
            return {}
        if origin in (Union, types.UnionType):
            return self._union(args)
        if origin is Literal:
            return _enum([_json_value(a)[1] for a in args if _json_value(a)[0]])
        if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
            schema = _enum([_json_value(m.value)[1] for m in annotation])
            title = _title(annotation, top=False)
            return {"title": title, **schema} if title else schema
        if isinstance(annotation, type) and issubclass(annotation, Event):
            return self._event(annotation)
        if isinstance(annotation, type) and attrs.has(annotation):
            return self._object(annotation)
        container = origin if origin is not None else annotation
        if _member(container, _ARRAYS):
            return self._array(container, args)
        if _member(container, _OBJECTS):
            value = self.of(args[1]) if len(args) == 2 else {}
            return {"type": "object", "additionalProperties": value}
        return {}

    def _union(self, args: tuple[Any, ...]) -> dict[str, Any]:
        options = [self.of(a) for a in args]
        if any(option == {} for option in options):
            return {}  # one option takes anything, so the union does
        unique = [o for i, o in enumerate(options) if o not in options[:i]]
        return unique[0] if len(unique) == 1 else {"anyOf": unique}

    def _array(self, container: Any, args: tuple[Any, ...]) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "array"}
        if container is tuple and args and args[-1] is not Ellipsis:
            if args == ((),):  # tuple[()]: the empty tuple
                schema["maxItems"] = 0
                return schema
            schema["prefixItems"] = [self.of(a) for a in args]
            schema["items"] = False
            schema["minItems"] = schema["maxItems"] = len(args)
            return schema
        if args:
            schema["items"] = self.of(args[0])
        if container in _UNIQUE:
            schema["uniqueItems"] = True
        return schema


def _member(value: Any, table: collections.abc.Container[Any]) -> bool:
    """``value in table``, false for the odd unhashable annotation."""
    try:
        return value in table
    except TypeError:
        return False


def _enum(values: list[Any]) -> dict[str, Any]:
    """An ``enum`` schema, typed when every value has one JSON type (forms like that)."""
    schema: dict[str, Any] = {"enum": values}
    kinds = {_json_type(v) for v in values}
    if len(kinds) == 1 and None not in kinds:
        schema = {"type": kinds.pop(), **schema}
    return schema


def _json_type(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, str):
        return "string"
    if isinstance(value, float):
        return "number"
    return None
