"""The incumbent's ways of reading an event, on anyflow's attrs events.

llama-index-workflows events are pydantic models that also act as read-only
dicts.  Programs, and the incumbent's HTTP client (llama-agents-client), call
``model_dump(mode="json")``, ``model_validate(data)``, ``model_copy(update=...)``,
``model_fields``, ``ev["key"]``, ``ev.get("key")``, ``"key" in ev``.  ``EventApi``
gives ``Event`` those names, with anyflow's meaning:

* one codec: ``model_dump(mode="json")`` and ``model_validate`` are
  ``anyflow.serialization.encode_fields`` and ``decode_fields``, the converter
  that journals and saved contexts use, so a value that round-trips one way
  round-trips the other;
* the mapping covers every field, declared and free (the incumbent's only its
  free ones, which ``ev._data`` gives here, read-only); events stay frozen, so
  ``ev["k"] = v`` is an error that names ``model_copy(update=...)``.

The incumbent's client decodes an envelope into the class it finds by
``type`` in the ``registry`` it is given, with that class's ``model_validate``:
``envelope.load_event(registry=[MyEvent, StopEvent])`` gives anyflow events.
Without a registry it imports the class named by ``qualified_name`` and takes
it only if it subclasses the incumbent's own ``Event``, which anyflow events do
not (registering them as virtual subclasses would make them pass for pydantic
models everywhere in the process, and pydantic would then fail on them).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

if TYPE_CHECKING:
    from collections.abc import Callable, ItemsView, KeysView, ValuesView

    from typing_extensions import Self

__all__ = ["EventApi", "EventField"]

_T = TypeVar("_T")


class _ClassProperty(Generic[_T]):
    """A read-only attribute computed from the class (pydantic's ``model_fields``)."""

    def __init__(self, fget: Callable[[type[Any]], _T]) -> None:
        self.fget = fget
        self.__doc__ = fget.__doc__

    def __get__(self, instance: object, owner: type[Any]) -> _T:
        return self.fget(owner)


@attrs.frozen
class EventField:
    """One declared field of an event class, as ``Event.model_fields`` lists it."""

    name: str
    annotation: Any
    default: Any
    """The default value; ``attrs.NOTHING`` if the field has none or a factory."""
    default_factory: Any
    description: str | None = None
    title: str | None = None

    def is_required(self) -> bool:
        return self.default is attrs.NOTHING and self.default_factory is None


def _frozen_error(cls: type, action: str) -> TypeError:
    return TypeError(
        f"{cls.__name__} is frozen, so {action} is not possible: derive a new event with "
        "ev.model_copy(update={...}) or attrs.evolve(ev, name=value)"
    )


class EventApi:
    """Mixin of ``Event``: read-only mapping access and the pydantic-style methods."""

    # Read-only mapping over the fields, declared and free.

    def _field_values(self) -> dict[str, Any]:
        values = {
            a.alias: getattr(self, a.name)
            for a in attrs.fields(type(self))  # type: ignore[arg-type]
            if a.init and a.name != "_extra"
        }
        values.update(self.__dict__.get("_extra", {}))
        return values

    def __getitem__(self, key: str) -> Any:
        values = self._field_values()
        if key not in values:
            raise KeyError(
                f"{type(self).__name__} has no field {key!r}; "
                f"it has: {', '.join(sorted(values)) or 'none'}"
            )
        return values[key]

    def __setitem__(self, key: str, value: Any) -> None:
        raise _frozen_error(type(self), f"ev[{key!r}] = ...")

    def __delitem__(self, key: str) -> None:
        raise _frozen_error(type(self), f"del ev[{key!r}]")

    def get(self, key: str, default: Any = None) -> Any:
        """The value of field ``key`` (declared or free), or ``default``."""
        return self._field_values().get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._field_values()

    def __iter__(self) -> Iterator[str]:
        return iter(self._field_values())

    def __len__(self) -> int:
        return len(self._field_values())

    def __bool__(self) -> bool:
        return True  # an event without fields is still an event, not an empty dict

    def keys(self) -> KeysView[str]:
        return self._field_values().keys()

    def values(self) -> ValuesView[Any]:
        return self._field_values().values()

    def items(self) -> ItemsView[str, Any]:
        return self._field_values().items()

    def to_dict(self) -> dict[str, Any]:
        """Every field, declared and free, by name (a new dict)."""
        return self._field_values()

    # pydantic-style methods.

    def model_dump(
        self,
        *,
        mode: str = "python",
        include: Iterable[str] | None = None,
        exclude: Iterable[str] | None = None,
        exclude_none: bool = False,
        by_alias: bool | None = None,
        round_trip: bool = False,
        warnings: bool | str = True,
    ) -> dict[str, Any]:
        """The event's fields (declared and free, flat) as a new dict.

        ``mode="json"``: JSON-safe data from anyflow's converter (what
        ``model_validate`` reads back); ``mode="python"``: the values as they are.
        ``by_alias``, ``round_trip`` and ``warnings`` change nothing on
        anyflow events (their fields have no aliases) and are accepted for
        compatibility.

        :raises ContextSerdeError: in json mode, naming a value JSON cannot hold.
        """
        if mode == "json":
            from .serialization import encode_fields

            values = encode_fields(self)  # type: ignore[arg-type]
        elif mode == "python":
            values = self._field_values()
        else:
            raise ValueError(f"model_dump(mode=...) is 'python' or 'json', not {mode!r}")
        if include is not None:
            wanted = set(include)
            values = {k: v for k, v in values.items() if k in wanted}
        if exclude is not None:
            unwanted = set(exclude)
            values = {k: v for k, v in values.items() if k not in unwanted}
        if exclude_none:
            values = {k: v for k, v in values.items() if v is not None}
        return values

    def model_dump_json(
        self,
        *,
        indent: int | None = None,
        include: Iterable[str] | None = None,
        exclude: Iterable[str] | None = None,
        exclude_none: bool = False,
        by_alias: bool | None = None,
    ) -> str:
        """``model_dump(mode="json")`` as a JSON string (compact unless ``indent``)."""
        data = self.model_dump(
            mode="json", include=include, exclude=exclude, exclude_none=exclude_none
        )
        if indent is None:
            return json.dumps(data, separators=(",", ":"))
        return json.dumps(data, indent=indent)

    @classmethod
    def model_validate(
        cls,
        obj: Any,
        *,
        strict: bool | None = None,
        from_attributes: bool | None = None,
        context: Any = None,
    ) -> Self:
        """An event of this class from a dict of its fields (JSON-safe data, as
        ``model_dump(mode="json")`` gives), or ``obj`` itself if it is one.

        Free fields may sit flat or, as the incumbent writes them, under ``_data``.

        :raises ContextSerdeError: (a ``ValueError``) naming the field that does not fit.
        """
        from .errors import ContextSerdeError
        from .serialization import decode_fields

        if isinstance(obj, cls):
            return obj
        if not isinstance(obj, Mapping):
            raise ContextSerdeError(
                f"{cls.__name__}.model_validate takes a dict of its fields, "
                f"not {type(obj).__name__}"
            )
        data = dict(obj)
        nested = data.get("_data")
        if isinstance(nested, Mapping):
            del data["_data"]
            data.update(nested)
        return decode_fields(cls, data)  # type: ignore[arg-type, return-value]

    @classmethod
    def model_validate_json(cls, json_data: str | bytes, **options: Any) -> Self:
        """``model_validate`` of a JSON document."""
        return cls.model_validate(json.loads(json_data), **options)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A new event with the same fields (copied deeply with ``deep``), ``update``
        applied.  The constructor checks the result: a name in ``update`` that
        is not a declared field is a free field (an error on a class that says
        ``open=False``), as it is for any keyword."""
        values = self._field_values()
        private = {
            name: self.__dict__[name]
            for name in getattr(type(self), "_private_attrs", {})
            if name in self.__dict__
        }
        if deep:
            values, private = copy.deepcopy((values, private))
        values.update(update or {})
        from .events import _init_declared

        new = object.__new__(type(self))
        # The base constructor, as pydantic does: a subclass's own __init__
        # may take other arguments than the fields.
        _init_declared(new, **values, **private)  # type: ignore[arg-type]
        return new

    @_ClassProperty
    def model_fields(cls: type[Any]) -> dict[str, EventField]:
        """The declared fields of the class, by name (pydantic's ``model_fields``)."""
        fields: dict[str, EventField] = {}
        for a in attrs.fields(cls):
            if not a.init or a.name == "_extra":
                continue
            factory = a.default.factory if isinstance(a.default, _FACTORY) else None
            fields[a.alias] = EventField(
                name=a.alias,
                annotation=a.type,
                default=attrs.NOTHING if factory is not None else a.default,
                default_factory=factory,
                description=a.metadata.get("description"),
                title=a.metadata.get("title"),
            )
        return fields

    @classmethod
    def model_json_schema(cls) -> dict[str, Any]:
        """The JSON Schema of the event's fields (``anyflow.serialization.event_schema``)."""
        from .serialization import event_schema

        return event_schema(cls)  # type: ignore[arg-type]


_FACTORY: type[Any] = type(attrs.Factory(list))
