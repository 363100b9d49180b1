"""Events on the wire: the envelope the incumbent's clients read and write.

An event goes out as ``{"type": name, "value": fields, "types": bases,
"qualified_name": "module.Name"}``, ``types`` null when the class derives from
no event class but ``Event`` (as the incumbent writes it).  One comes in as such an envelope (only
``type`` or ``qualified_name`` needed), or, where the route knows the class
(a start event), as its bare fields.  A name is looked up in the workflow's
own registry and nowhere else: a request can never make the server import or
build a class the workflow did not declare.
"""

from __future__ import annotations

import builtins
import json
from typing import TYPE_CHECKING, Any

from ..errors import ContextSerdeError
from ..events import (
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    InternalEvent,
    StartEvent,
    StopEvent,
    WorkflowFailedEvent,
)
from ..serialization import decode_fields, encode_fields

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["BadEvent", "EventRegistry", "envelope", "event_value"]

_FRAMEWORK: tuple[type[Event], ...] = (
    StartEvent,
    StopEvent,
    InputRequiredEvent,
    HumanResponseEvent,
)


class BadEvent(ValueError):
    """A request's event that cannot be read; the message says why and what fits."""


def _public_bases(cls: type[Event]) -> list[str]:
    """The names of the Event classes ``cls`` derives from, nearest first, without
    itself, ``Event`` and private helpers (what a client matches on)."""
    return [
        c.__name__
        for c in cls.__mro__[1:]
        if isinstance(c, type)
        and issubclass(c, Event)
        and c is not Event
        and not c.__name__.startswith("_")
    ]


_INCUMBENT_MODULE = "workflows.events"
"""Where llama-index-workflows defines its built-in events."""

_SHARED_BUILT_INS = frozenset(
    {
        "StartEvent",
        "StopEvent",
        "InputRequiredEvent",
        "HumanResponseEvent",
        "StepFailedEvent",
        "StepStateChanged",
        "WorkflowCancelledEvent",
        "WorkflowFailedEvent",
        "WorkflowIdleEvent",
        "WorkflowTimedOutEvent",
    }
)
"""anyflow's built-in events that the incumbent defines under the same name."""


def _built_in(cls: type) -> bool:
    return cls.__module__ == Event.__module__ and cls.__qualname__ in _SHARED_BUILT_INS


def qualified_name(cls: type) -> str:
    """The ``qualified_name`` of ``cls`` in an envelope.

    A built-in event is named as the incumbent names its own
    (``workflows.events.StopEvent``): the incumbent's client resolves such a
    name to its class of the same name, while ``anyflow.events...`` is not a
    class it accepts.  Both names are read from clients.
    """
    if _built_in(cls):
        return f"{_INCUMBENT_MODULE}.{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def event_value(event: Event) -> dict[str, Any]:
    """The event's fields as JSON-safe data; the free fields sit
    flat beside the declared ones, as the incumbent's clients expect."""
    return encode_fields(event)


def _incumbent_exception(event: WorkflowFailedEvent) -> dict[str, Any]:
    """The failure as the incumbent's ``WorkflowFailedEvent.exception`` is written,
    so that its client can rebuild its own failure event from the value."""
    kind = event.exception_type
    if "." not in kind and isinstance(getattr(builtins, kind, None), type):
        kind = f"builtins.{kind}"
    return {"exception_type": kind, "exception_message": event.exception_message}


def envelope(event: Event, encoded: Any = None) -> dict[str, Any]:
    """The event on the wire.  ``encoded``: the event as ``encode_event``
    gave it already (the journal's), not to encode it twice."""
    cls = type(event)
    if encoded is not None and not isinstance(event, WorkflowFailedEvent):
        value = encoded["fields"]
        if "_extra" in value:  # the free fields, flat
            value = dict(value)
            value.update(value.pop("_extra") or {})
        name, bases, qualified = _class_names(cls)
        return {
            "type": name,
            "value": value,
            "types": list(bases) or None,
            "qualified_name": qualified,
        }
    value = event_value(event)
    if isinstance(event, WorkflowFailedEvent) and "exception" not in value:
        # Beside anyflow's own fields (which anyflow's readers take back and
        # ``decode_fields`` lets this key through for), the incumbent's shape.
        value["exception"] = _incumbent_exception(event)
    name, bases, qualified = _class_names(cls)
    return {"type": name, "value": value, "types": list(bases) or None, "qualified_name": qualified}


_NAMES: dict[type, tuple[str, tuple[str, ...], str]] = {}


def _class_names(cls: type[Event]) -> tuple[str, tuple[str, ...], str]:
    """An event class's names in an envelope, worked out once per class (a
    stream writes many events of a few classes)."""
    names = _NAMES.get(cls)
    if names is None:
        if len(_NAMES) >= 1024:  # classes made on the fly: keep it bounded
            _NAMES.clear()
        names = _NAMES[cls] = (cls.__name__, tuple(_public_bases(cls)), qualified_name(cls))
    return names


class EventRegistry:
    """The event classes one served workflow reads from requests, by name."""

    def __init__(self, classes: Iterable[type[Event]]) -> None:
        self.by_name: dict[str, type[Event]] = {}
        self._by_qualified: dict[str, type[Event]] = {}
        for cls in (*_FRAMEWORK, *classes):
            if issubclass(cls, InternalEvent):
                continue
            self.by_name[cls.__name__] = cls
            self._by_qualified[qualified_name(cls)] = cls
            self._by_qualified[f"{cls.__module__}.{cls.__qualname__}"] = cls

    def classes(self) -> list[type[Event]]:
        return list(dict.fromkeys(self.by_name.values()))

    def _lookup(self, data: dict[str, Any]) -> type[Event] | None:
        name = data.get("type")
        if isinstance(name, str) and name:
            cls = self.by_name.get(name)
            if cls is None:
                raise BadEvent(
                    f"unknown event type {name!r}; this workflow takes: "
                    f"{', '.join(sorted(self.by_name))} (register others with "
                    "add_workflow(..., additional_events=[...]))"
                )
            return cls
        qualified = data.get("qualified_name")
        if isinstance(qualified, str) and qualified:
            cls = self._by_qualified.get(qualified)
            if cls is None:
                raise BadEvent(
                    f"unknown event type {qualified!r}; this workflow takes: "
                    f"{', '.join(sorted(self._by_qualified))}"
                )
            return cls
        return None

    def parse(self, data: Any, *, bare: type[Event] | None = None) -> Event:
        """The event ``data`` describes.

        ``data`` is an envelope (``type`` or ``qualified_name``, and ``value``;
        ``data`` is read as ``value`` by older clients), or a JSON string of one.
        With ``bare``, data that names no type is the fields of ``bare``, and a
        named type must be ``bare`` or one of its bases (``StartEvent`` for a
        workflow's own start event class).

        :raises BadEvent: saying what is wrong and what would fit.
        """
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                # from None: a route turns this into an HTTP answer that carries the message
                raise BadEvent("the event is a string that is not JSON") from None
        if isinstance(data, dict) and isinstance(data.get("__anyflow_event__"), str):
            data = _from_serializer(data)
        if not isinstance(data, dict):
            raise BadEvent(
                f"the event must be a JSON object, not {type(data).__name__}: "
                '{"type": "MyEvent", "value": {...fields}}'
            )
        cls = self._lookup(data)
        if cls is None:
            if bare is None or "value" in data:
                if bare is None:
                    raise BadEvent(
                        'the event names no type: send {"type": "MyEvent", "value": {...}}'
                    )
                cls = bare
            else:
                return _build(bare, data)
        elif bare is not None and cls is not bare:
            if not issubclass(bare, cls):
                # The incumbent's words first (bare is a workflow's start event class).
                raise BadEvent(
                    f"Start event must be an instance of {bare.__name__} (or a base of it), "
                    f"not {cls.__name__}"
                )
            cls = bare
        value = data.get("value", data.get("data"))
        if value is None:
            value = {}
        return _build(cls, value)


def _from_serializer(data: dict[str, Any]) -> dict[str, Any]:
    """An event as ``JsonSerializer().serialize()`` writes it (what the
    incumbent's programs post to ``/events``), as an envelope: the class is
    still looked up among the workflow's events, never imported."""
    module, _, qualname = data["__anyflow_event__"].rpartition(":")
    fields = data.get("fields")
    if not isinstance(fields, dict):
        raise BadEvent('a serialized event has its "fields" as a JSON object')
    value = {k: v for k, v in fields.items() if k != "_extra"}
    extra = fields.get("_extra")
    if isinstance(extra, dict):
        value.update(extra)
    return {"qualified_name": f"{module}.{qualname}", "value": value}


def _build(cls: type[Event], value: Any) -> Event:
    if not isinstance(value, dict):
        raise BadEvent(f"the value of a {cls.__name__} must be a JSON object of its fields")
    nested = value.get("_data")
    if isinstance(nested, dict):
        # The incumbent's pydantic events dump their free fields under `_data`.
        value = {**{k: v for k, v in value.items() if k != "_data"}, **nested}
    if not isinstance(value.get("_extra", {}), dict):
        raise BadEvent(f"_extra of a {cls.__name__} must be an object (or send free fields flat)")
    # The excepts below raise from None: a route answers BadEvent with its message.
    try:
        return decode_fields(cls, value, "$.value")
    except ContextSerdeError as exc:
        raise BadEvent(str(exc)) from None
    except (AttributeError, KeyError, IndexError) as exc:
        # How cattrs fails on a value of the wrong shape for a mapping or class field.
        raise BadEvent(
            f"the fields do not fit {cls.__name__}: {type(exc).__name__}: {exc}"
        ) from None
