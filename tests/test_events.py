from __future__ import annotations

import attrs
import pytest

from anyflow import (
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    WorkflowTimedOutEvent,
)


class Joke(Event):
    text: str
    rating: int = 0


class OrderStart(StartEvent):
    order_id: str


class StrictJoke(Event, open=False):
    text: str
    rating: int = 0


def test_fields_by_annotation_make_a_keyword_constructor() -> None:
    joke = Joke(text="owls")
    assert (joke.text, joke.rating) == ("owls", 0)
    assert joke == Joke(text="owls", rating=0)
    assert repr(joke) == "Joke(text='owls', rating=0)"


def test_a_misspelt_required_field_is_named_with_the_free_field_given() -> None:
    with pytest.raises(
        TypeError,
        match=r"^Joke is missing required field\(s\): text \(it got free field\(s\) txt: "
        r"a misspelling\?\)$",
    ):
        Joke(txt="owls")  # type: ignore[call-arg]


def test_a_closed_event_refuses_free_fields_naming_its_fields() -> None:
    with pytest.raises(
        TypeError,
        match=r"^StrictJoke has no field 'txt'; its fields are: rating, text \(declare the "
        r"field in the class: StrictJoke is open=False, so it takes no free fields\)$",
    ):
        StrictJoke(text="owls", txt="owls")  # type: ignore[call-arg]


def test_missing_required_field_is_named() -> None:
    with pytest.raises(TypeError, match=r"^Joke is missing required field\(s\): text$"):
        Joke()  # type: ignore[call-arg]


def test_positional_arguments_are_refused_with_an_example() -> None:
    with pytest.raises(TypeError, match=r"^Joke takes keyword arguments only, e\.g\. Joke\("):
        Joke("owls")  # type: ignore[misc]


def test_events_are_frozen() -> None:
    joke = Joke(text="owls")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        joke.text = "cats"  # type: ignore[misc]
    assert attrs.evolve(joke, text="cats") == Joke(text="cats")


def test_start_event_takes_free_fields() -> None:
    ev = StartEvent(topic="owls", count=3)
    assert (ev.topic, ev.count) == ("owls", 3)
    assert ev.get("missing", "default") == "default"
    assert ev == StartEvent(topic="owls", count=3)
    assert ev != StartEvent(topic="cats", count=3)
    assert repr(ev) == "StartEvent(topic='owls', count=3)"
    with pytest.raises(AttributeError, match=r"^'StartEvent' object has no attribute 'nope'$"):
        _ = ev.nope


def test_typed_start_event_takes_free_fields_beside_its_own() -> None:
    ev = OrderStart(order_id="42", rush=True)  # type: ignore[call-arg]
    assert (ev.order_id, ev.rush) == ("42", True)
    with pytest.raises(TypeError, match=r"^OrderStart is missing required field\(s\): order_id"):
        OrderStart(ordr_id="42")  # type: ignore[call-arg]


def test_human_events_take_free_fields_and_declared_ones() -> None:
    assert InputRequiredEvent(prefix="name? ").prefix == "name? "
    answer = HumanResponseEvent(response="yes", user="ann")
    assert (answer.response, answer.user) == ("yes", "ann")


def test_stop_event_carries_a_result_and_can_be_typed() -> None:
    class Answer(StopEvent):
        value: int

    assert StopEvent(result=[1]).result == [1]
    assert Answer(value=3).value == 3
    timed_out = WorkflowTimedOutEvent(timeout=1.5, active_steps=("a",))
    assert isinstance(timed_out, StopEvent)
    assert timed_out.active_steps == ("a",)


def test_mutable_defaults_are_not_shared() -> None:
    class Tagged(Event):
        tags: list[str] = []  # noqa: RUF012 - anyflow gives each event its own copy

    first, second = Tagged(), Tagged()
    first.tags.append("x")
    assert second.tags == []


def test_a_free_field_takes_precedence_over_an_event_method_of_its_name() -> None:
    ev = StartEvent(items=[1, 2], topic="owls")
    assert ev.items == [1, 2]
    assert ev["items"] == [1, 2]
    assert StartEvent(topic="owls").items() == {"topic": "owls"}.items()
    assert ev.keys() == {"items": [1, 2], "topic": "owls"}.keys()
