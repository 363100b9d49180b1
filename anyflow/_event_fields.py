"""Event fields written the pydantic way, read into attrs terms at class creation.

Code written for llama-index-workflows declares event fields with pydantic's
``Field(default=..., description=...)`` and per-instance helpers with
``PrivateAttr()``.  anyflow events are attrs classes, so before ``attrs.define``
runs, ``prepare(cls)`` rewrites what it can honour and refuses the rest:

* ``Field(...)`` becomes ``attrs.field(...)``: ``default`` and
  ``default_factory`` are kept, ``title``, ``description`` and ``examples`` go
  to the field's metadata (where ``event_schema`` finds them), and the numeric
  and length constraints (``gt``, ``ge``, ``lt``, ``le``, ``multiple_of``,
  ``min_length``, ``max_length``) become validators checked at construction
  (and shown in the schema).  Any other setting (``alias``, ``pattern``,
  ``exclude``, ...) is a ``TypeError`` here, at class creation: a setting that
  was silently dropped would port a program wrong.
* ``_name: T = PrivateAttr(...)`` becomes a private attribute, as in pydantic:
  not a field (not serialized, not compared, not in the schema), settable by
  keyword at construction and assignable later, even though the event is frozen.
* pydantic validators and serializers (``@field_validator``,
  ``@model_validator``, ``@computed_field``, ...) never run on an attrs class,
  so they are refused.

pydantic is never imported here: a ``FieldInfo`` can only exist if the program
imported pydantic already, so nothing is looked for unless it is loaded.
"""

from __future__ import annotations

import operator
import sys
from typing import Any

import attrs

__all__ = ["CONSTRAINT_KEY", "DESCRIPTION_KEYS", "PrivateDefault", "prepare"]

DESCRIPTION_KEYS = ("title", "description", "examples")
"""Field metadata keys that ``event_schema`` copies into a property's schema."""

CONSTRAINT_KEY = "constraints"
"""Field metadata key of the ``(name, bound)`` constraints a field is checked against."""

_NOTHING: Any = attrs.NOTHING


@attrs.frozen
class PrivateDefault:
    """How a private attribute starts when the constructor is not given it."""

    default: Any = _NOTHING
    factory: Any = None

    def value(self) -> Any:
        """The starting value, or ``attrs.NOTHING`` to leave the attribute unset."""
        return self.factory() if self.factory is not None else self.default


_CHECKS: dict[str, tuple[Any, str]] = {
    "gt": (operator.gt, ">"),
    "ge": (operator.ge, ">="),
    "lt": (operator.lt, "<"),
    "le": (operator.le, "<="),
}

# Settings of a FieldInfo that are honoured (default, factory, description
# keys) or that pydantic sets on its own (annotation, alias priority).
_HONOURED = frozenset(
    {"default", "default_factory", *DESCRIPTION_KEYS, "json_schema_extra", "repr", "annotation"}
)


def _pydantic_kind(value: Any) -> str | None:
    """``"field"``, ``"private"``, ``"decorator"`` for pydantic's objects, else None."""
    kind = type(value)
    if not kind.__module__.startswith("pydantic"):
        return None
    return {
        "FieldInfo": "field",
        "ModelPrivateAttr": "private",
        "PydanticDescriptorProxy": "decorator",
    }.get(kind.__name__)


def prepare(cls: type, inherited: dict[str, PrivateDefault]) -> dict[str, PrivateDefault]:
    """Rewrite ``cls``'s pydantic declarations in place; its private attributes.

    :raises TypeError: for a pydantic setting or decorator anyflow cannot honour.
    """
    private = dict(inherited)
    if "pydantic" not in sys.modules:
        return private
    # The class's own annotations dict, to edit in place (get_annotations copies it).
    annotations: dict[str, Any] = cls.__dict__.get("__annotations__", {})  # noqa: RUF063
    for name, value in list(cls.__dict__.items()):
        kind = _pydantic_kind(value)
        if kind == "decorator":
            raise TypeError(
                f"{cls.__name__}.{name}: anyflow events are attrs classes, and pydantic "
                "validators and serializers never run on them; check values in "
                "__attrs_post_init__ or with attrs.field(validator=...)"
            )
        if kind == "private":
            private[name] = PrivateDefault(
                default=_given(value.default), factory=value.default_factory
            )
            annotations.pop(name, None)
            delattr(cls, name)
        elif kind == "field":
            if name not in annotations:
                raise TypeError(
                    f"{cls.__name__}.{name} = Field(...) needs a type annotation, "
                    f"e.g. {name}: str = Field(...)"
                )
            setattr(cls, name, _attrs_field(cls, name, value))
    return private


def _given(value: Any) -> Any:
    """pydantic's "no default" marker as attrs'."""
    return _NOTHING if type(value).__name__ == "PydanticUndefinedType" else value


def _attrs_field(cls: type, name: str, info: Any) -> Any:
    where = f"{cls.__name__}.{name}"
    unsupported = sorted(set(info._attributes_set) - _HONOURED)
    if unsupported:
        raise TypeError(
            f"{where}: Field({', '.join(f'{k}=...' for k in unsupported)}) is not supported "
            "on anyflow events (they are attrs classes); keep default, default_factory, "
            "title, description, examples and the numeric and length bounds"
        )
    metadata: dict[str, Any] = {}
    for key in DESCRIPTION_KEYS:
        value = getattr(info, key, None)
        if value is not None:
            metadata[key] = value
    extra = getattr(info, "json_schema_extra", None)
    if extra is not None:
        if not isinstance(extra, dict):
            raise TypeError(f"{where}: json_schema_extra must be a dict on anyflow events")
        metadata["json_schema_extra"] = dict(extra)
    constraints = _constraints(where, info.metadata)
    if constraints:
        metadata[CONSTRAINT_KEY] = constraints
    kwargs: dict[str, Any] = {"metadata": metadata}
    if constraints:
        kwargs["validator"] = _Bounds(where, constraints)
    if info.default_factory is not None:
        kwargs["factory"] = info.default_factory
    else:
        kwargs["default"] = _given(info.default)
    if info._attributes_set.get("repr") is False:
        kwargs["repr"] = False
    return attrs.field(**kwargs)


def _constraints(where: str, metadata: list[Any]) -> tuple[tuple[str, Any], ...]:
    found: list[tuple[str, Any]] = []
    for item in metadata:
        names = [
            n
            for n in ("gt", "ge", "lt", "le", "multiple_of", "min_length", "max_length")
            if hasattr(item, n)
        ]
        if type(item).__module__ != "annotated_types" or len(names) != 1:
            raise TypeError(
                f"{where}: the Field constraint {item!r} is not supported on anyflow events; "
                "check it in __attrs_post_init__ or with attrs.field(validator=...)"
            )
        found.append((names[0], getattr(item, names[0])))
    return tuple(found)


@attrs.frozen
class _Bounds:
    """The attrs validator of a field's pydantic bounds."""

    where: str
    constraints: tuple[tuple[str, Any], ...]

    def __call__(self, instance: Any, attribute: Any, value: Any) -> None:
        for name, bound in self.constraints:
            if name in _CHECKS:
                check, symbol = _CHECKS[name]
                if not check(value, bound):
                    raise ValueError(f"{self.where} must be {symbol} {bound!r}, got {value!r}")
            elif name == "multiple_of":
                if value % bound:
                    raise ValueError(f"{self.where} must be a multiple of {bound!r}, got {value!r}")
            else:
                size = len(value)
                if name == "min_length" and size < bound:
                    raise ValueError(f"{self.where} must have at least {bound} item(s), got {size}")
                if name == "max_length" and size > bound:
                    raise ValueError(f"{self.where} must have at most {bound} item(s), got {size}")
