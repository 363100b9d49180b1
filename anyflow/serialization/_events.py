"""Events to and from JSON-safe data, with anyflow's own cattrs converter.

An event is written as ``{"__anyflow_event__": "module:qualname", "fields":
{...}}``.  Reading looks the name up among the ``Event`` subclasses that exist
in this process; it never imports a module named in the payload, so a payload
cannot make the process run code it did not already load.
"""

from __future__ import annotations

import collections.abc
import contextlib
import math
import typing
from typing import Any

import attrs
import cattrs
from cattrs.errors import BaseValidationError, CattrsError, ClassValidationError

from .._dict_state import DictState
from .._pydantic import dump_model, is_model_class, load_model
from ..errors import ContextSerdeError
from ..events import Event, WorkflowFailedEvent

TAG = "__anyflow_event__"

_types: dict[str, type[Event]] = {f"{Event.__module__}:{Event.__qualname__}": Event}
"""Event classes by ``module:qualname``: ``Event`` itself (an event may be a
bare ``Event`` with free fields only) and, as they are looked for, its subclasses."""


def type_name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _walk(cls: type[Event]) -> None:
    for sub in cls.__subclasses__():
        _types.setdefault(type_name(sub), sub)
        _walk(sub)


def event_type(name: str, path: str = "$") -> type[Event]:
    """The event class registered under ``name`` (``module:qualname``)."""
    cls = _types.get(name)
    if cls is None:
        _walk(Event)
        cls = _types.get(name)
    if cls is None:
        raise ContextSerdeError(
            f"unknown event type {name!r} at {path}: import the module that defines it "
            "before restoring (anyflow never imports modules named in saved data)"
        )
    return cls


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)

    def is_event(t: Any) -> bool:
        return isinstance(t, type) and issubclass(t, Event)

    def unstructure_event(ev: Event) -> dict[str, Any]:
        return _unstructure_event(converter, ev)[0]

    def structure_event(data: Any, declared: type) -> Event:
        return decode_event(data)

    converter.register_unstructure_hook_func(is_event, unstructure_event)
    converter.register_structure_hook_func(is_event, structure_event)
    converter.register_structure_hook(Any, lambda data, _: _revive(data))
    _configure_state_classes(converter)
    # cattrs would turn 3 into "3" and "ab" into ["a", "b"]; saved data that
    # does not have the declared type is corrupt, and is reported as such.
    for primitive in (str, int, float, bool):
        converter.register_structure_hook(primitive, _strict(primitive))
    return converter


def _configure_state_classes(converter: cattrs.Converter) -> None:
    """State classes that are not attrs classes: pydantic models (through their
    own ``model_dump``/``model_validate``, only when the program uses pydantic)
    and ``DictState`` subclasses (a dictionary of untyped values)."""

    def is_dict_state(t: Any) -> bool:
        return isinstance(t, type) and issubclass(t, DictState)

    def structure_dict_state(data: Any, cls: type[DictState]) -> DictState:
        if not isinstance(data, dict):
            raise TypeError(f"expected an object for {cls.__name__}, got {_short(data)}")
        return cls(_revive(data))

    converter.register_unstructure_hook_func(is_model_class, dump_model)
    converter.register_structure_hook_func(is_model_class, lambda data, cls: load_model(cls, data))
    converter.register_structure_hook_func(is_dict_state, structure_dict_state)


def _strict(kind: type) -> Any:
    def structure(data: Any, _: type) -> Any:
        if kind is float and isinstance(data, int) and not isinstance(data, bool):
            return float(data)
        if type(data) is not kind:
            raise TypeError(f"expected {kind.__name__}, got {type(data).__name__} {_short(data)}")
        return data

    return structure


_Plan = tuple[str, tuple[tuple[str, str, bool, Any], ...]]

_plans: dict[type, _Plan] = {}
"""Per event class, what writing one takes: its tag, and per field its name,
its key, whether it is written only when set, and its default.  Made once:
this runs for every event a durable run records."""

_ALWAYS_SAFE = frozenset({str, int, bool, type(None)})
"""Values written as they are, and JSON-safe whatever their value."""


def _plan(cls: type[Event]) -> _Plan:
    plan = _plans.get(cls)
    if plan is None:
        added = cls._written_when_set
        plan = (
            type_name(cls),
            tuple((f.name, f.alias, f.name in added, f.default) for f in attrs.fields(cls)),
        )
        _plans[cls] = plan
    return plan


def _unstructure_event(converter: cattrs.Converter, ev: Event) -> tuple[dict[str, Any], bool]:
    """``ev`` as data, and whether that is JSON-safe already (every value a
    string, an integer, a bool or None); if not, ``check_json`` decides."""
    tag, fields = _plan(type(ev))
    out: dict[str, Any] = {}
    safe = True
    for name, alias, when_set, default in fields:
        value = getattr(ev, name)
        if name == "_extra":
            # Free fields, under their own key so that they never pass for a
            # declared field; written only when there are some.
            if value:
                extra: dict[str, Any] = {}
                for key, item in value.items():
                    if type(key) is str and type(item) in _ALWAYS_SAFE:
                        extra[key] = item
                    else:
                        extra[key] = converter.unstructure(item)
                        safe = False
                out["_extra"] = extra
            continue
        if when_set and value == default:
            continue
        if type(value) in _ALWAYS_SAFE:
            out[alias] = value
        else:
            out[alias] = converter.unstructure(value)
            safe = False
    return {TAG: tag, "fields": out}, safe


def _revive(data: Any) -> Any:
    """Untyped values (``Any`` fields, free fields) may hold events: find them."""
    if isinstance(data, dict):
        if TAG in data:
            return decode_event(data)
        return {key: _revive(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_revive(value) for value in data]
    return data


_converter = _make_converter()


def encode_event(ev: Event, path: str = "$") -> dict[str, Any]:
    """``ev`` as JSON-safe data.

    :raises ContextSerdeError: naming the path of a value JSON cannot hold.
    """
    data, safe = _unstructure_event(_converter, ev)
    if not safe:
        check_json(data, path)
    return data


def encode_fields(ev: Event, path: str = "$") -> dict[str, Any]:
    """The fields of ``ev`` as JSON-safe data, the free fields
    flat beside the declared ones: what ``decode_fields`` reads back, the
    ``value`` of the server's envelopes and ``ev.model_dump(mode="json")``.

    :raises ContextSerdeError: naming the path of a value JSON cannot hold.
    """
    fields: dict[str, Any] = encode_event(ev, path)["fields"]
    extra = fields.pop("_extra", None)
    if extra:
        fields.update(extra)
    return fields


def decode_event(data: Any, path: str = "$") -> Event:
    """The event ``data`` describes.

    :raises ContextSerdeError: for an unknown type or fields that do not fit it.
    """
    if not isinstance(data, dict) or set(data) != {TAG, "fields"}:
        raise ContextSerdeError(
            f"expected an event ({{{TAG!r}: ..., 'fields': ...}}) at {path}, got {_short(data)}"
        )
    return decode_fields(event_type(data[TAG], path), data["fields"], f"{path}.fields")


def decode_fields(cls: type[Event], fields: Any, path: str = "$") -> Event:
    """An event of class ``cls`` from its fields as JSON-safe data (free fields
    flat beside the declared ones).

    ``path`` is where the fields sit in a larger document, for error messages.

    :raises ContextSerdeError: naming the field that does not fit.
    """
    if not isinstance(fields, dict):
        raise ContextSerdeError(f"expected the fields of {cls.__name__} at {path}")
    if issubclass(cls, WorkflowFailedEvent) and isinstance(fields.get("exception"), dict):
        fields = _failure_fields(cls, fields)
    try:
        return cls(
            **{key: _structure_field(cls, key, value, path) for key, value in fields.items()}
        )
    except ContextSerdeError:
        raise
    except (TypeError, ValueError) as exc:
        # ValueError: a bound the class checks (``Field(ge=0)``).
        raise ContextSerdeError(f"cannot rebuild {cls.__name__} at {path}: {exc}") from exc


def _failure_fields(cls: type[Event], fields: dict[str, Any]) -> dict[str, Any]:
    """A failure written the incumbent's way (``exception: {exception_type,
    exception_message}``, which anyflow's server also adds to its envelopes)
    as anyflow's text fields."""
    if "exception" in attrs.fields_dict(cls):
        return fields  # a subclass that declares a field of that name
    fields = dict(fields)
    exception = fields.pop("exception")
    for key in ("exception_type", "exception_message"):
        value = exception.get(key)
        if key not in fields and isinstance(value, str):
            fields[key] = value
    return fields


def _structure_field(cls: type[Event], key: str, value: Any, path: str) -> Any:
    if key == "_extra":
        if not isinstance(value, dict):
            raise ContextSerdeError(
                f"the free fields of {cls.__name__} at {path}._extra are an object of names "
                f"to values, not {_short(value)}"
            )
        return _revive(value)
    annotation = _field_types(cls).get(key)
    if annotation is None:
        return _revive(value)  # a free field, or an annotation we cannot resolve
    try:
        origin = typing.get_origin(annotation) or annotation
        if isinstance(value, str) and origin in _SEQUENCES:
            raise TypeError(f"expected a list, got str {_short(value)}")
        return _converter.structure(value, annotation)
    except (CattrsError, TypeError, ValueError) as exc:
        detail = (
            "; ".join(cattrs.transform_error(exc)) if isinstance(exc, BaseValidationError) else exc
        )
        raise ContextSerdeError(
            f"field {key!r} of {cls.__name__} at {path}.{key} does not fit {annotation!r}: {detail}"
        ) from exc


_SEQUENCES = (list, tuple, set, frozenset, collections.abc.Sequence, collections.abc.Set)

_resolved: dict[type, dict[str, Any]] = {}


def _field_types(cls: type[Event]) -> dict[str, Any]:
    """Field annotations by init name, resolved once per class where possible."""
    types = _resolved.get(cls)
    if types is None:
        # A class local to a function keeps its string annotations unresolved.
        with contextlib.suppress(NameError):
            attrs.resolve_types(cls)
        types = {
            f.alias: f.type
            for f in attrs.fields(cls)
            if f.type is not None and not isinstance(f.type, str)
        }
        _resolved[cls] = types
    return types


def check_json(value: Any, path: str) -> None:
    """Raise ``ContextSerdeError`` at the first value JSON cannot hold."""
    if not _json_safe(value):
        _explain(value, path)


_PLAIN = (str, int, bool, type(None))


def _json_safe(value: Any) -> bool:
    """Whether JSON can hold ``value`` (what ``_explain`` checks, without
    writing the path of every value on the way: this runs for every event a
    durable run records)."""
    kind = type(value)
    if kind in _PLAIN:
        return True
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str and not isinstance(key, str):
                return False
            if type(item) not in _PLAIN and not _json_safe(item):
                return False
        return True
    if kind is list or kind is tuple:
        return all(type(item) in _PLAIN or _json_safe(item) for item in value)
    if kind is float:
        return math.isfinite(value)
    if isinstance(value, bool | int | str):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    return False  # anything else, a container's subclass too: _explain decides


def _explain(value: Any, path: str) -> None:
    """Raise ``ContextSerdeError`` at the first value JSON cannot hold."""
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ContextSerdeError(
                f"{value!r} at {path} is not a finite number; JSON cannot hold it"
            )
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _explain(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ContextSerdeError(f"key {key!r} at {path} is not a string; JSON keys are")
            _explain(item, f"{path}.{key}")
        return
    raise ContextSerdeError(
        f"{type(value).__name__} value at {path} is not JSON-safe: store plain data "
        "(str, int, float, bool, None, lists, dicts, events) in events and in the store"
    )


def _short(data: Any) -> str:
    text = repr(data)
    return text if len(text) <= 60 else text[:57] + "..."


def encode_value(value: Any, path: str) -> Any:
    """Any value (events included, attrs instances as dicts) as JSON-safe data.

    :raises ContextSerdeError: naming the path of a value JSON cannot hold.
    """
    data = _converter.unstructure(value)
    check_json(data, path)
    return data


def decode_value(data: Any, kind: Any, path: str) -> Any:
    """``data`` read back as ``kind`` (``Any`` for untyped data).

    :raises ContextSerdeError: naming the path when it does not fit.
    """
    if kind is Any:
        return _revive(data)
    try:
        return _converter.structure(data, kind)
    except (ClassValidationError, TypeError, ValueError) as exc:
        detail: Any = exc
        if isinstance(exc, ClassValidationError):
            detail = "; ".join(cattrs.transform_error(exc, path=path))
        raise ContextSerdeError(f"{path} does not fit {kind.__name__}: {detail}") from exc
