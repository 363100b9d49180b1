"""Events: the messages steps exchange, and the ones anyflow publishes.

An ``Event`` subclass declares its fields by annotation and becomes a frozen,
keyword-only attrs class, with no decorator.  Frozen because one event may be
delivered to several steps at once: a step that could change it would change it
under the others' feet.  Use ``attrs.evolve(ev, field=...)`` to derive a new one.

A keyword that is not a declared field is a *free field*, as in
llama-index-workflows (``Event(msg="hi").msg``, ``StartEvent(topic="owls")``,
which ``wf.run(topic="owls")`` builds): kept in the event's ``_extra``,
compared, shown by ``repr``, readable as an attribute and by key, and saved
and journaled with the declared fields.  A free field never changes a declared
one's type or checks: a keyword that names a declared field is that field.  A
class that wants its typos caught says ``open=False``; its subclasses inherit
that unless they say otherwise.

Code written for llama-index-workflows reads events the pydantic way too:
``ev["key"]``, ``ev.get("key")``, ``model_dump()``, ``model_validate()``,
``model_copy(update=...)``, ``model_fields`` (see ``_event_api``), and declares
fields with pydantic's ``Field(...)`` and ``PrivateAttr()``, which are honoured
or refused when the class is created (see ``_event_fields``).
"""

from __future__ import annotations

import copy
import functools
import inspect
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

import attrs

from ._event_api import EventApi
from ._event_fields import PrivateDefault, prepare

if sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:  # pragma: no cover
    from typing_extensions import dataclass_transform

__all__ = [
    "Event",
    "HumanResponseEvent",
    "InputRequiredEvent",
    "InternalEvent",
    "StartEvent",
    "StepFailedEvent",
    "StepState",
    "StepStateChanged",
    "StopEvent",
    "WorkflowCancelledEvent",
    "WorkflowFailedEvent",
    "WorkflowIdleEvent",
    "WorkflowTimedOutEvent",
]


class _FreeFields(dict[str, Any]):
    """An event's free fields: a dict that refuses changes, since the event is frozen.

    Pickling and copying rebuild it whole (``__reduce__``), never item by item.
    """

    __slots__ = ()

    def __reduce__(self) -> tuple[type[_FreeFields], tuple[dict[str, Any]]]:
        return (type(self), (dict(self),))

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(
            "an event's free fields cannot change (the event is frozen): derive a new "
            "event with ev.model_copy(update={...})"
        )

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse


_NO_FREE_FIELDS = _FreeFields()
"""The free fields of every event built without any (never changed: it refuses)."""


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(attrs.field,))
@attrs.define(slots=False, frozen=True, kw_only=True, init=False, repr=False)
class Event(EventApi):
    """Base class of every event.

    Subclass it and annotate fields::

        class Joke(Event):
            text: str
            rating: int = 0

    A keyword that is not a declared field is a free field (``Joke(text="a",
    mood="grim").mood``), unless the class says ``open=False``.
    """

    _open: ClassVar[bool] = True
    _field_names: ClassVar[frozenset[str]] = frozenset()
    """The declared fields' keywords."""
    _private_attrs: ClassVar[dict[str, PrivateDefault]] = {}
    _written_when_set: ClassVar[frozenset[str]] = frozenset()
    """Fields added to a built-in event after journals and saved contexts held
    it: written only when they differ from their default, so that an older
    record reads back and is written again as it was."""

    _extra: Mapping[str, Any] = attrs.field(
        default=_NO_FREE_FIELDS, alias="_extra", repr=False, hash=False
    )
    """The free fields: compared and saved, not hashed (their values need not be)."""

    def __init_subclass__(cls, *, open: bool | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._private_attrs = prepare(cls, cls._private_attrs)
        if open is not None:
            cls._open = open
        # `tags: list[str] = []` would share one list between every event;
        # give each event a copy instead.
        for name in inspect.get_annotations(cls):
            default = cls.__dict__.get(name)
            if isinstance(default, list | dict | set):
                setattr(cls, name, attrs.Factory(functools.partial(copy.copy, default)))
        attrs.define(cls, slots=False, frozen=True, kw_only=True, init=False, repr=False)
        # attrs gives every frozen class its own __setattr__; ours also lets
        # private attributes change and says how to change a field.
        cls.__setattr__ = _setattr  # type: ignore[method-assign, assignment]
        cls._field_names = frozenset(a.alias for a in attrs.fields(cls) if a.init) - {"_extra"}
        # A class that declares no fields takes only free ones: sort them out
        # at once.  (Unless the class or a base has an __init__ of its own.)
        if cls.__init__ is _init_declared or cls.__init__ is _init_free_only:
            plain = not cls._field_names and not cls._private_attrs
            cls.__init__ = _init_free_only if plain else _init_declared  # type: ignore[method-assign]

    def __init__(self, *args: Any, **fields: Any) -> None:
        # The __init__ of a class that declares fields (Event itself and
        # classes that declare none use _init_free_only).
        if args:
            raise TypeError(
                f"{type(self).__name__} takes keyword arguments only, "
                f"e.g. {type(self).__name__}({_example(type(self))})"
            )
        private = self._private_attrs
        # Most events declare no private attributes: skip their bookkeeping
        # (one set, one dict and a loop per event, on every hop and stream write).
        given_private = (
            {k: fields.pop(k) for k in private.keys() & fields.keys()} if private else {}
        )
        if "_extra" in fields:  # saved data, attrs.evolve
            _init_with_free_fields(self, fields)
        else:
            try:
                self.__attrs_init__(**fields)
            except TypeError as exc:
                # Most events have no free fields, so they are looked for only
                # when the generated __init__ refuses a keyword, which Python
                # does before the body runs: nothing was set yet.
                _init_with_free_fields(self, fields, exc)
        for name, start in private.items() if private else ():
            value = given_private.get(name, attrs.NOTHING)
            if value is attrs.NOTHING:
                value = start.value()
            if value is not attrs.NOTHING:
                object.__setattr__(self, name, value)

    @property
    def _data(self) -> Mapping[str, Any]:
        """The free fields alone, read-only (llama-index-workflows' name for them)."""
        data: Mapping[str, Any] = self.__dict__.get("_extra", _NO_FREE_FIELDS)
        return data

    def fields(self) -> dict[str, Any]:
        """Every field, declared and free, by name (a new dict)."""
        return self._field_values()

    def __repr__(self) -> str:
        parts = [f"{a.name}={getattr(self, a.name)!r}" for a in attrs.fields(type(self)) if a.repr]
        parts += [f"{k}={v!r}" for k, v in self.__dict__.get("_extra", {}).items()]
        return f"{type(self).__name__}({', '.join(parts)})"


_init_declared = Event.__init__


def _init_free_only(self: Event, *args: Any, **fields: Any) -> None:
    """``__init__`` of ``Event`` and of classes that declare no fields (nor
    private attributes): every keyword is a free field.  A subclass with an
    ``__init__`` of its own reaches this one through ``super().__init__()``;
    if it declares private attributes, they are sorted out as usual."""
    if args or self._private_attrs:
        _init_declared(self, *args, **fields)  # says why not, or sorts them out
    elif fields:
        _init_with_free_fields(self, fields)
    else:
        self.__attrs_init__()


Event.__init__ = _init_free_only  # type: ignore[method-assign]


def _init_with_free_fields(
    event: Event, fields: Mapping[str, Any], refused: TypeError | None = None
) -> None:
    """Initialize ``event`` from ``fields`` that hold free fields (or ``_extra``).

    ``refused``: the error of a first try without sorting them out, raised
    again (as the cause) if there were none, since then it was about
    something else.
    """
    cls = type(event)
    try:
        declared, free = _sorted_fields(cls, fields)
    except TypeError as exc:
        if refused is None:
            raise
        raise exc from refused
    if free is None:
        if refused is not None:
            raise _field_error(cls, fields) from refused
    else:
        declared["_extra"] = free
    try:
        event.__attrs_init__(**declared)
    except TypeError as exc:
        raise _field_error(cls, declared) from exc
    if free:
        # Free fields read as plain attributes (a __getattr__ would slow every
        # attribute read of every event), which take precedence over methods
        # of their name (``items``, ``get``).  Names with a leading underscore
        # are read by key only: they could hide the event's own attributes
        # (only the declared fields and ``_extra`` are set yet, and no free
        # field has their names).
        attributes = event.__dict__
        attributes.update(free)
        for name in free:
            if name[:1] == "_":
                del attributes[name]


def _sorted_fields(
    cls: type[Event], fields: Mapping[str, Any]
) -> tuple[dict[str, Any], _FreeFields | None]:
    """``fields`` split into the declared ones and the free ones (None if there
    are none): keywords that are not declared fields, and those of
    ``_extra``/``_data`` mappings (as saved data and llama-index-workflows'
    dumps carry them) that are not either.  A keyword given flat wins over one
    of the same name in a mapping.

    :raises TypeError: for free fields on a class that says ``open=False``, or
        an ``_extra``/``_data`` that is not a mapping with string keys.
    """
    names = cls._field_names
    declared: dict[str, Any] = {}
    free: dict[str, Any] = {}
    if "_extra" in fields or "_data" in fields:
        for key in ("_extra", "_data"):
            given = fields.get(key)
            if given is None:
                continue
            if not isinstance(given, Mapping) or not all(isinstance(k, str) for k in given):
                raise TypeError(
                    f"{cls.__name__}({key}=...) takes the free fields as a mapping of names "
                    f"to values, not {type(given).__name__} {_short(given)}"
                )
            for name, value in given.items():
                if name in names:
                    declared[name] = value
                else:
                    free[name] = value
    for name, value in fields.items():
        if name in names:
            declared[name] = value
        elif name != "_extra" and name != "_data":
            free[name] = value
    if not free:
        return declared, None
    if not cls._open:
        raise _field_error(cls, {**declared, **free})
    return declared, _FreeFields(free)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _FrozenEventError(attrs.exceptions.FrozenInstanceError):
    """attrs' error for assigning to a frozen instance, with a message that says what to do."""

    def __init__(self, message: str) -> None:
        AttributeError.__init__(self, message)


def _setattr(self: Event, name: str, value: Any) -> None:
    if name in type(self)._private_attrs:
        object.__setattr__(self, name, value)
        return
    raise _FrozenEventError(
        f"{type(self).__name__} is frozen, so ev.{name} = ... is not possible: derive a new "
        f"event with ev.model_copy(update={{{name!r}: ...}}) or attrs.evolve(ev, {name}=...)"
    )


Event.__setattr__ = _setattr  # type: ignore[method-assign, assignment]


def _example(cls: type[Event]) -> str:
    return ", ".join(f"{n}=..." for n in sorted(cls._field_names))


def _field_error(cls: type[Event], given: Mapping[str, Any]) -> TypeError:
    known = cls._field_names
    unknown = sorted(set(given) - known - {"_extra"})
    required = sorted(a.alias for a in attrs.fields(cls) if a.init and a.default is attrs.NOTHING)
    missing = [name for name in required if name not in given]
    fields = ", ".join(sorted(known)) or "none"
    if unknown:
        return TypeError(
            f"{cls.__name__} has no field {', '.join(map(repr, unknown))}; its fields are: "
            f"{fields} (declare the field in the class: {cls.__name__} is open=False, "
            "so it takes no free fields)"
        )
    if missing:
        free = sorted(given.get("_extra") or ())
        hint = f" (it got free field(s) {', '.join(free)}: a misspelling?)" if free else ""
        return TypeError(f"{cls.__name__} is missing required field(s): {', '.join(missing)}{hint}")
    return TypeError(f"cannot build {cls.__name__} from {sorted(given)}; its fields are: {fields}")


class StartEvent(Event):
    """Starts a run.  ``wf.run(**fields)`` builds the workflow's start event from
    its keyword arguments; subclass it to type them."""

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any: ...


class StopEvent(Event):
    """Returned by a step to end the run; ``result`` is what ``await handler`` gives.

    A typed subclass is returned whole by ``await handler``.
    """

    result: Any = None


class InputRequiredEvent(Event):
    """Asks the caller for input.  A step returning one publishes it to the stream."""

    prefix: str = ""

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any: ...


class HumanResponseEvent(Event):
    """The caller's answer, sent in with ``handler.send_event``."""

    response: Any = None

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any: ...


class _CarriesException:
    """``exception``, for events that describe a failure by its type name and message."""

    __slots__ = ()

    @property
    def exception(self) -> BaseException:
        """The exception itself in the process that raised it; after the event was
        saved or replayed from a journal, a ``SavedError`` with its type name
        (``type_name``) and message, since the object and traceback stay behind."""
        error = self.__dict__.get("_exception")
        if error is None:
            from .serialization import SavedError

            error = SavedError(
                getattr(self, "exception_type", ""), getattr(self, "exception_message", "")
            )
        assert isinstance(error, BaseException)
        return error


def with_exception(event: Event, error: BaseException) -> None:
    """Let ``event.exception`` be ``error`` in this process (it is not a field: it is
    neither compared nor saved)."""
    object.__setattr__(event, "_exception", error)


class StepFailedEvent(_CarriesException, Event):
    """Describes a step whose attempts are exhausted (for error handlers)."""

    step_name: str
    input_event: Event
    exception_type: str
    exception_message: str
    attempts: int
    elapsed_seconds: float = 0.0
    """Seconds from the start of the first attempt to the final failure."""
    failed_at_timestamp: float | None = None
    """When the final failure happened, as a POSIX timestamp (``failed_at``
    gives it as a datetime)."""

    _written_when_set = frozenset({"elapsed_seconds", "failed_at_timestamp"})

    @property
    def failed_at(self) -> datetime | None:
        """When the final failure happened, a timezone-aware UTC datetime (None
        for an event built without ``failed_at_timestamp``)."""
        stamp = self.failed_at_timestamp
        return None if stamp is None else datetime.fromtimestamp(stamp, timezone.utc)


class InternalEvent(Event):
    """Base of the events that describe the run's inner workings; the stream
    carries them only to a consumer that asks (``stream_events(expose_internal=True)``)."""


class WorkflowIdleEvent(InternalEvent):
    """Every unfinished step is waiting for an event from outside (published once
    per idle period)."""


class StepState(str, Enum):
    """The values of ``StepStateChanged.step_state`` (plain strings compare equal to them)."""

    PREPARING = "preparing"
    """Queued, waiting for a free worker (anyflow does not publish this one)."""
    RUNNING = "running"
    NOT_RUNNING = "not_running"


class StepStateChanged(InternalEvent):
    """A step attempt started (``step_state="running"``) or ended (``"not_running"``)."""

    name: str
    step_state: str
    worker_id: int
    input_event_name: str
    output_event_name: str | None = None
    exception_type: str | None = None
    """For an attempt that ended by raising, the exception's type name (None
    when it returned, an event or nothing); anyflow's own field."""


class WorkflowFailedEvent(_CarriesException, StopEvent):
    """Published last when a run fails; ``await handler`` then raises."""

    step_name: str | None = None
    exception_type: str = ""
    exception_message: str = ""
    attempts: int | None = None


class WorkflowCancelledEvent(StopEvent):
    """Published last when a run is cancelled."""


class WorkflowTimedOutEvent(StopEvent):
    """Published last when a run reaches its timeout."""

    timeout: float = 0.0
    active_steps: tuple[str, ...] = ()
