"""What the server answers, as typed values: event envelopes, handlers,
schemas and graphs.

Each is a record on anyflow's one converter (``anyflow.serialization.records``),
and every answer is read through ``read_answer``, which refuses what does not
fit with a ``WorkflowClientError`` that names the JSON path and shows the data,
so a server of another version fails at the read, not later in the caller's
code. Keys the client does not know are dropped (a newer server may send more,
and the protocol's handlers carry ``result_unreadable``, which the client has
no use for); fields that a run may lack (``run_id``, the times, ``error``,
``result``, an envelope's ``types``) may be absent or null. An envelope's
``value`` and a graph's nodes are kept as the JSON they are.
``EventEnvelope.to_event`` turns an envelope back into an anyflow event
through the same converter (``decode_fields``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, TypeAlias, TypeVar, get_args, overload

import attrs

from ..errors import ContextSerdeError
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
from ..serialization import decode_fields, records
from ._errors import UnknownEventError, WorkflowClientError

__all__ = [
    "EventEnvelope",
    "Handler",
    "Status",
    "WorkflowGraphInfo",
    "WorkflowSchema",
    "read_answer",
]

Status: TypeAlias = Literal["running", "completed", "failed", "cancelled"]

_E = TypeVar("_E", bound=Event)
_EventClass: TypeAlias = type[Event]
_ClassOf: TypeAlias = type[_E]
"""(``EventEnvelope.type`` hides the builtin inside that class.)"""
_R = TypeVar("_R")

_FRAMEWORK_EVENTS: tuple[_EventClass, ...] = (
    StartEvent,
    StopEvent,
    InputRequiredEvent,
    HumanResponseEvent,
    WorkflowFailedEvent,
    WorkflowCancelledEvent,
    WorkflowTimedOutEvent,
)


def read_answer(data: Any, cls: type[_R], what: str) -> _R:
    """The record of class ``cls`` that the server's JSON ``data`` (``what``:
    "a handler") describes.

    :raises WorkflowClientError: naming the path of what does not fit.
    """
    try:
        record: _R = records.read(data, cls, "$")
    except ContextSerdeError as exc:
        raise WorkflowClientError(
            f"the server sent {what} this client cannot read: {exc} (the answer: "
            f"{short(data)}); check that the client's base_url is an anyflow or "
            "llama-agents workflow server"
        ) from exc
    return record


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


# Fields that are not plain values.


def _json_object(data: Any, path: str) -> Mapping[str, Any]:
    """JSON data kept as it is (an event's fields may hold anyflow's tagged
    events, which only ``to_event`` should read)."""
    if not isinstance(data, dict):
        raise ContextSerdeError(f"{path} must be an object, not {short(data)}")
    return data


def _json_objects(data: Any, path: str) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(data, list):
        raise ContextSerdeError(f"{path} must be a list of objects, not {short(data)}")
    return tuple(_json_object(item, f"{path}[{i}]") for i, item in enumerate(data))


def _names(data: Any, path: str) -> tuple[str, ...]:
    if data is None:
        return ()
    if not (isinstance(data, list) and all(isinstance(name, str) for name in data)):
        raise ContextSerdeError(f"{path} must be a list of class names, not {short(data)}")
    return tuple(data)


def _status(data: Any, path: str) -> Status:
    if data not in get_args(Status):
        statuses = ", ".join(get_args(Status))
        raise ContextSerdeError(f"{path} is {data!r}, not one of {statuses}")
    status: Status = data
    return status


def _time(data: Any, path: str) -> datetime | None:
    if data is None or data == "":
        return None
    if isinstance(data, str):
        try:
            return datetime.fromisoformat(data[:-1] + "+00:00" if data.endswith("Z") else data)
        except ValueError:
            pass
    raise ContextSerdeError(f"{path} must be an ISO 8601 time, not {short(data)}")


_OBJECT = records.Field(None, _json_object)
_OBJECTS = records.Field(list, _json_objects)
_TIME = records.Field(lambda t: None if t is None else t.isoformat(), _time)


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
        """The envelope the server's JSON describes (``sequence``: from the
        stream frame it came in).

        :raises WorkflowClientError: naming the path of what does not fit.
        """
        read = read_answer(data, cls, "an event envelope")
        if sequence is None:
            return read
        return cls(read.type, read.value, read.types, read.qualified_name, sequence)

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
        """The handler the server's JSON describes.

        :raises WorkflowClientError: naming the path of what does not fit.
        """
        return read_answer(data, cls, "a handler")


@attrs.frozen
class WorkflowSchema:
    """JSON Schemas of a workflow's start event and stop event fields."""

    start: Mapping[str, Any]
    stop: Mapping[str, Any]


@attrs.frozen
class WorkflowGraphInfo:
    """A workflow's graph as the server draws it (``anyflow.graph.WorkflowGraph.to_json``)."""

    name: str
    description: str | None = None
    nodes: tuple[Mapping[str, Any], ...] = ()
    """Step, event, external and resource nodes: ``id``, ``label``, ``node_type``..."""
    edges: tuple[Mapping[str, Any], ...] = ()
    """``source`` and ``target`` node ids (and a ``label`` on resource edges)."""


# The answers of the other routes, read through the same records: each is
# the object a route answers with, the one key the client uses in it.


@attrs.frozen
class GraphAnswer:
    graph: WorkflowGraphInfo


@attrs.frozen
class HandlersAnswer:
    handlers: tuple[Handler, ...]


@attrs.frozen
class StatusAnswer:
    """``/health``'s (``healthy``) and a cancellation's (``cancelled``, ``deleted``)."""

    status: str


@attrs.frozen
class WorkflowsAnswer:
    workflows: tuple[str, ...]


@attrs.frozen
class EventsAnswer:
    events: tuple[Mapping[str, Any], ...]


records.register(
    EventEnvelope,
    absent=("types", "qualified_name"),
    omitted=("sequence",),
    ignore_unknown=True,
    value=_OBJECT,
    types=records.Field(list, _names),
)
records.register(
    Handler,
    absent=("run_id", "started_at", "updated_at", "completed_at", "error", "result"),
    ignore_unknown=True,
    status=records.Field(None, _status),
    started_at=_TIME,
    updated_at=_TIME,
    completed_at=_TIME,
)
records.register(WorkflowSchema, ignore_unknown=True, start=_OBJECT, stop=_OBJECT)
records.register(
    WorkflowGraphInfo,
    absent=("description", "nodes", "edges"),
    ignore_unknown=True,
    nodes=_OBJECTS,
    edges=_OBJECTS,
)
for _answer in (GraphAnswer, HandlersAnswer, StatusAnswer, WorkflowsAnswer):
    records.register(_answer, ignore_unknown=True)
records.register(EventsAnswer, ignore_unknown=True, events=_OBJECTS)
