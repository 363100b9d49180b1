"""What the server answers, as typed values: event envelopes, handlers,
schemas and graphs.

Each reads its JSON in a ``from_json`` (or in the client method that asks
for it) and refuses what does not fit with a ``WorkflowClientError`` that
shows the data, so a server of another version fails at the read, not later
in the caller's code. ``EventEnvelope.to_event`` turns an envelope back into
an anyflow event through the one converter (``decode_fields``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, TypeAlias, TypeVar, cast, overload

import attrs

from ..events import (
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    WorkflowCancelledEvent,
    WorkflowFailedEvent,
    WorkflowTimedOutEvent,
)
from ..serialization import decode_fields
from ._errors import UnknownEventError, WorkflowClientError

__all__ = [
    "EventEnvelope",
    "Handler",
    "Status",
    "WorkflowGraphInfo",
    "WorkflowSchema",
    "json_object",
]

Status: TypeAlias = Literal["running", "completed", "failed", "cancelled"]
_STATUSES = ("running", "completed", "failed", "cancelled")

_E = TypeVar("_E", bound=Event)
_EventClass: TypeAlias = type[Event]
_ClassOf: TypeAlias = type[_E]
"""(``EventEnvelope.type`` hides the builtin inside that class.)"""

_FRAMEWORK_EVENTS: tuple[_EventClass, ...] = (
    StartEvent,
    StopEvent,
    InputRequiredEvent,
    HumanResponseEvent,
    WorkflowFailedEvent,
    WorkflowCancelledEvent,
    WorkflowTimedOutEvent,
)


def json_object(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise WorkflowClientError(f"expected {what} as a JSON object, got {short(data)}")
    return data


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _datetime(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value)
    return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


@attrs.frozen
class EventEnvelope:
    """An event as the server sends it: its class name and its fields."""

    type: str
    """The event class's name (``"Progress"``)."""
    value: Mapping[str, Any]
    """The event's fields as JSON data (its free fields among them)."""
    types: tuple[str, ...] = ()
    """Names of the public event classes it derives from, nearest first
    (``("StopEvent",)`` for a custom stop event)."""
    qualified_name: str | None = None
    """``module.QualName`` of the class on the server."""
    sequence: int | None = None
    """Its position in the run's stream (0, 1, ...), when it came from a stream."""

    @classmethod
    def from_json(cls, data: Any, sequence: int | None = None) -> EventEnvelope:
        data = json_object(data, "an event envelope")
        name = data.get("type")
        if not isinstance(name, str):
            raise WorkflowClientError(f"an event envelope needs a type name, got {short(data)}")
        value = data.get("value")
        return cls(
            type=name,
            value=value if isinstance(value, Mapping) else {},
            types=tuple(data.get("types") or ()),
            qualified_name=data.get("qualified_name"),
            sequence=sequence,
        )

    def is_a(self, *names: str) -> bool:
        """Whether the event's class is, or derives from, one of these class names."""
        return self.type in names or any(name in names for name in self.types)

    @property
    def is_terminal(self) -> bool:
        """Whether this is a run's last event (a ``StopEvent`` of some kind)."""
        return self.is_a("StopEvent")

    @overload
    def to_event(self, cls: _ClassOf[_E], /) -> _E: ...
    @overload
    def to_event(self, *classes: _EventClass) -> Event: ...
    def to_event(self, *classes: _EventClass) -> Event:
        """The event, rebuilt as an instance of the class of its name among
        ``classes``, or among anyflow's own events when no class is given.

        ``envelope.to_event(Counted).total``, ``envelope.to_event(Progress,
        Counted)``; a plain ``StopEvent`` needs no class: ``handler.result.to_event()``.

        :raises UnknownEventError: if no candidate has the envelope's name.
        :raises anyflow.errors.ContextSerdeError: if the fields do not fit the class.
        """
        candidates = classes or _FRAMEWORK_EVENTS
        chosen = next((c for c in candidates if _qualified(c) == self.qualified_name), None)
        if chosen is None:
            chosen = next((c for c in candidates if c.__name__ == self.type), None)
        if chosen is None:
            names = ", ".join(c.__name__ for c in candidates)
            raise UnknownEventError(
                f"no class for event type {self.type!r} among {names}; "
                f"pass its class: envelope.to_event({self.type}, ...)"
            )
        return decode_fields(chosen, dict(self.value), "$.value")


@attrs.frozen
class Handler:
    """One run on the server, as last read (``get_handler`` reads it again)."""

    handler_id: str
    workflow_name: str
    status: Status
    """``running``, or how it ended: ``completed``, ``failed`` (timeouts
    included) or ``cancelled``."""
    run_id: str | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None
    completed_at: datetime | None = None
    error: str | None = None
    """For a failed run, the exception and the step (``"Boom: ... in step 'x'"``)."""
    result: EventEnvelope | None = None
    """For a completed run, its stop event."""

    @property
    def is_done(self) -> bool:
        return self.status != "running"

    @classmethod
    def from_json(cls, data: Any) -> Handler:
        data = json_object(data, "a handler")
        status = data.get("status")
        if status not in _STATUSES:
            raise WorkflowClientError(f"a handler with an unknown status: {short(data)}")
        result = data.get("result")
        return cls(
            handler_id=str(data["handler_id"]),
            workflow_name=str(data.get("workflow_name", "")),
            status=cast("Status", status),
            run_id=data.get("run_id"),
            started_at=_datetime(data.get("started_at")),
            updated_at=_datetime(data.get("updated_at")),
            completed_at=_datetime(data.get("completed_at")),
            error=data.get("error"),
            result=EventEnvelope.from_json(result) if result is not None else None,
        )


@attrs.frozen
class WorkflowSchema:
    """JSON Schemas of a workflow's start event and stop event fields."""

    start: Mapping[str, Any]
    stop: Mapping[str, Any]


@attrs.frozen
class WorkflowGraphInfo:
    """A workflow's graph as the server draws it (``anyflow.graph.WorkflowGraph.to_json``)."""

    name: str
    description: str | None
    nodes: tuple[Mapping[str, Any], ...]
    """Step, event, external and resource nodes: ``id``, ``label``, ``node_type``..."""
    edges: tuple[Mapping[str, Any], ...]
    """``source`` and ``target`` node ids (and a ``label`` on resource edges)."""
