"""Events written and read the way llama-index-workflows code does.

pydantic's ``Field`` and ``PrivateAttr`` on an event are honoured or refused
when the class is created; events read like read-only dicts and offer the
pydantic methods that code (and the incumbent's HTTP client) calls, all of
them agreeing with anyflow's one converter.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
from pydantic import Field, PrivateAttr, field_validator

from anyflow.errors import ContextSerdeError
from anyflow.events import Event, InputRequiredEvent, StartEvent, StopEvent, WorkflowFailedEvent
from anyflow.serialization import (
    decode_event,
    decode_fields,
    encode_event,
    encode_fields,
    event_schema,
)


class Scored(Event):
    score: int = Field(ge=0, description="Points, never negative.")
    tags: list[str] = Field(default_factory=list, description="Labels.", max_length=3)
    note: str = Field(default="none", title="Note", examples=["great"])


class WithPrivate(Event):
    name: str
    _cache: dict[str, int] = PrivateAttr(default_factory=dict)
    _token: str = PrivateAttr()
    _level: int = PrivateAttr(default=1)


class Doubled(WithPrivate):
    """A subclass with a constructor of its own that sets a private attribute."""

    def __init__(self, factor: int, **fields: Any) -> None:
        super().__init__(**fields)
        self._level = factor * 2


class Joke(Event):
    text: str
    rating: int = 0


class StrictJoke(Event, open=False):
    text: str
    rating: int = 0


# pydantic Field: honoured, never stored as a FieldInfo.


def test_field_defaults_are_values_not_field_infos() -> None:
    ev = Scored(score=3)
    assert (ev.score, ev.tags, ev.note) == (3, [], "none")
    assert Scored(score=1).tags is not ev.tags  # a fresh list per event


def test_field_description_title_examples_and_bounds_reach_the_schema() -> None:
    props = event_schema(Scored)["properties"]
    assert props["score"] == {
        "type": "integer",
        "description": "Points, never negative.",
        "minimum": 0,
    }
    assert props["tags"]["description"] == "Labels."
    assert props["tags"]["maxItems"] == 3
    assert props["tags"]["default"] == []
    assert props["note"] == {
        "type": "string",
        "title": "Note",
        "examples": ["great"],
        "default": "none",
    }
    assert event_schema(Scored)["required"] == ["score"]
    assert Scored.model_json_schema() == event_schema(Scored)


def test_field_bounds_are_checked_at_construction_and_when_read_back() -> None:
    with pytest.raises(ValueError, match=r"^Scored\.score must be >= 0, got -1$"):
        Scored(score=-1)
    with pytest.raises(ValueError, match=r"^Scored\.tags must have at most 3 item\(s\), got 4$"):
        Scored(score=1, tags=["a", "b", "c", "d"])
    with pytest.raises(ContextSerdeError, match=r"Scored\.score must be >= 0"):
        Scored.model_validate({"score": -5})


@pytest.mark.parametrize(
    ("field", "refused"),
    [
        ("Field(alias='y')", r"Field\(alias=\.\.\., serialization_alias=\.\.\., validation_alias"),
        ("Field(pattern='a+')", r"the Field constraint .*pattern='a\+'.* is not supported"),
        ("Field(default=1, exclude=True)", r"Field\(exclude=\.\.\.\) is not supported"),
    ],
)
def test_field_settings_anyflow_cannot_honour_are_refused_at_class_creation(
    field: str, refused: str
) -> None:
    namespace: dict[str, Any] = {"Event": Event, "Field": Field}
    source = f"class Bad(Event):\n    x: int = {field}\n"
    with pytest.raises(TypeError, match=rf"^Bad\.x: {refused}"):
        exec(source, namespace)


def test_field_without_annotation_is_refused() -> None:
    with pytest.raises(TypeError, match=r"^Bad\.x = Field\(\.\.\.\) needs a type annotation"):

        class Bad(Event):
            x = Field(default=1)


def test_pydantic_validators_are_refused_at_class_creation() -> None:
    with pytest.raises(TypeError, match=r"^Bad\.check: .*pydantic validators .* never run"):

        class Bad(Event):
            x: int

            @field_validator("x")
            @classmethod
            def check(cls, value: int) -> int:
                return value


# PrivateAttr: per-event helpers, not fields.


def test_private_attributes_start_from_their_defaults_or_the_constructor() -> None:
    ev = WithPrivate(name="a", _token="t")
    assert (ev._cache, ev._token, ev._level) == ({}, "t", 1)
    assert WithPrivate(name="b")._cache is not ev._cache
    with pytest.raises(AttributeError):
        _ = WithPrivate(name="c")._token  # no default, not given: unset, as in pydantic


def test_private_attributes_may_change_though_the_event_is_frozen() -> None:
    ev = Doubled(3, name="a")
    assert ev._level == 6
    ev._level = 7
    assert ev._level == 7
    with pytest.raises(attrs.exceptions.FrozenInstanceError, match=r"^Doubled is frozen"):
        ev.name = "b"  # type: ignore[misc]


def test_private_attributes_are_not_data() -> None:
    ev = WithPrivate(name="a", _token="secret")
    assert ev.model_dump() == {"name": "a"}
    assert "_token" not in json.dumps(encode_event(ev))
    assert "_token" not in event_schema(WithPrivate)["properties"]
    assert ev == WithPrivate(name="a", _token="other")
    copied = ev.model_copy(update={"name": "b"})
    assert (copied.name, copied._token) == ("b", "secret")


# Dict-style access.


def test_open_events_read_like_dicts_of_all_their_fields() -> None:
    ev = InputRequiredEvent(prefix="Name? ", user="ada")
    assert ev["prefix"] == "Name? "
    assert ev["user"] == ev.user == "ada"
    assert ev.get("user") == "ada"
    assert ev.get("missing", 5) == 5
    assert "user" in ev
    assert "missing" not in ev
    assert ev.keys() == {"prefix": "Name? ", "user": "ada"}.keys()
    assert list(ev.values()) == ["Name? ", "ada"]
    assert dict(ev.items()) == dict(ev) == ev.to_dict() == {"prefix": "Name? ", "user": "ada"}
    assert len(ev) == 2
    assert list(ev) == ["prefix", "user"]
    with pytest.raises(KeyError, match="has no field 'missing'"):
        _ = ev["missing"]


def test_an_event_without_fields_is_still_true() -> None:
    assert len(StartEvent()) == 0
    assert bool(StartEvent()) is True


def test_declared_fields_read_by_key_too() -> None:
    assert Joke(text="a")["rating"] == 0
    assert Joke(text="a").get("text") == "a"


def test_writes_say_how_to_derive_a_changed_event() -> None:
    ev = StartEvent(topic="owls")
    with pytest.raises(TypeError, match=r"^StartEvent is frozen.*model_copy\(update=\{\.\.\.\}\)"):
        ev["topic"] = "cats"
    with pytest.raises(
        attrs.exceptions.FrozenInstanceError,
        match=r"^StartEvent is frozen, so ev\.topic = \.\.\. is not possible: .*"
        r"model_copy\(update=\{'topic': \.\.\.\}\)",
    ):
        ev.topic = "cats"


def test_unknown_keyword_on_a_closed_event_names_the_field_and_the_fix() -> None:
    with pytest.raises(
        TypeError,
        match=r"^StrictJoke has no field 'mood'; its fields are: rating, text \(declare the "
        r"field in the class: StrictJoke is open=False, so it takes no free fields\)$",
    ):
        StrictJoke(text="a", mood="grim")  # type: ignore[call-arg]


# pydantic-style methods, agreeing with the converter.


def test_model_dump_python_and_json() -> None:
    nested = StopEvent(result=Joke(text="a"))
    assert nested.model_dump() == {"result": Joke(text="a")}
    assert nested.model_dump(mode="json") == encode_fields(nested)
    assert StartEvent(topic="owls", n=2).model_dump(mode="json") == {"topic": "owls", "n": 2}
    ev = Joke(text="a")
    assert ev.model_dump(include={"text"}) == {"text": "a"}
    assert ev.model_dump(exclude={"text"}) == {"rating": 0}
    assert StopEvent().model_dump(exclude_none=True) == {}
    assert ev.model_dump_json() == '{"text":"a","rating":0}'
    assert json.loads(ev.model_dump_json(indent=2)) == {"text": "a", "rating": 0}
    with pytest.raises(ValueError, match=r"^model_dump\(mode=\.\.\.\) is 'python' or 'json'"):
        ev.model_dump(mode="yaml")


@pytest.mark.parametrize(
    "event",
    [
        Joke(text="a", rating=2),
        StartEvent(topic="owls", count=3),
        StopEvent(result={"nested": Joke(text="b")}),
        WorkflowFailedEvent(step_name="s", exception_type="ValueError", exception_message="m"),
        Scored(score=2, tags=["x"]),
    ],
)
def test_model_validate_reads_back_what_model_dump_json_writes(event: Event) -> None:
    cls = type(event)
    data = event.model_dump(mode="json")
    assert cls.model_validate(data) == event
    assert cls.model_validate_json(event.model_dump_json()) == event
    assert decode_fields(cls, data) == event
    assert decode_event(encode_event(event)) == event


def test_model_validate_takes_the_incumbents_shapes() -> None:
    assert StartEvent.model_validate({"_data": {"topic": "owls"}}) == StartEvent(topic="owls")
    ev = Joke(text="a")
    assert Joke.model_validate(ev) is ev
    failed = WorkflowFailedEvent.model_validate(
        {
            "step_name": "s",
            "exception": {"exception_type": "builtins.ValueError", "exception_message": "m"},
        }
    )
    assert (failed.exception_type, failed.exception_message) == ("builtins.ValueError", "m")


def test_model_validate_refuses_what_does_not_fit() -> None:
    with pytest.raises(
        ContextSerdeError, match=r"^Joke\.model_validate takes a dict of its fields"
    ):
        Joke.model_validate(["a"])
    with pytest.raises(ContextSerdeError, match=r"field 'rating' of Joke .* does not fit"):
        Joke.model_validate({"text": "a", "rating": "high"})
    with pytest.raises(ContextSerdeError, match=r"StrictJoke has no field 'mood'"):
        StrictJoke.model_validate({"text": "a", "mood": "grim"})


def test_model_copy() -> None:
    ev = StartEvent(topic="owls", tags=["a"])
    copied = ev.model_copy(update={"count": 2})
    assert copied == StartEvent(topic="owls", tags=["a"], count=2)
    assert copied.tags is ev.tags
    assert ev.model_copy(deep=True).tags is not ev.tags
    assert Joke(text="a").model_copy(update={"rating": 5}) == Joke(text="a", rating=5)
    moody = Joke(text="a").model_copy(update={"mood": "grim"})
    assert moody == Joke(text="a", mood="grim")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"^StrictJoke has no field 'mood'"):
        StrictJoke(text="a").model_copy(update={"mood": "grim"})


def test_model_fields() -> None:
    fields = Scored.model_fields
    assert list(fields) == ["score", "tags", "note"]
    assert fields["score"].is_required()
    assert fields["score"].description == "Points, never negative."
    assert fields["tags"].default_factory is list
    assert not fields["tags"].is_required()
    assert fields["note"].default == "none"
    assert fields["note"].title == "Note"
    assert "result" in StopEvent.model_fields
    assert StartEvent.model_fields == {}


class _OwnInit(Event):
    _given: int = PrivateAttr()
    _doubled: int = PrivateAttr()

    def __init__(self, _doubled: int, **fields: Any) -> None:
        super().__init__(**fields)
        self._doubled = _doubled * 2


def test_private_attributes_through_an_init_of_its_own() -> None:
    # A class with no fields, private attributes and its own __init__ reaches
    # Event's through super(): a private attribute given by keyword is set,
    # not taken for a free field.
    ev = _OwnInit(a=1, _given=2, _doubled=2)
    assert ev._data == {"a": 1}
    assert ev._given == 2
    assert ev._doubled == 4
