"""Free fields: keywords an event class does not declare, written the way
llama-index-workflows code writes them (``Event(msg="hi")``,
``StopEvent(result=1, extra=2)``).

They read like declared fields, count in equality and ``repr``, survive every
encoding of an event, never change a declared field's type or checks, and
leave routing alone; the event stays frozen.  A class that says
``open=False`` refuses them.  The journal, server and DBOS round trips are in
tests/durable/test_free_fields.py, tests/server/test_free_fields.py and
tests/dbos/test_free_fields.py.
"""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import attrs
import pytest
from pydantic import Field

from anyflow import (
    Context,
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StepFailedEvent,
    StopEvent,
    Workflow,
    WorkflowIdleEvent,
    step,
)
from anyflow.errors import ContextSerdeError
from anyflow.serialization import decode_event, decode_fields, encode_event, encode_fields


class Joke(Event):
    text: str
    rating: int = Field(default=0, ge=0)


class StrictJoke(Event, open=False):
    text: str


class StricterJoke(StrictJoke):
    pass


class Loosened(StrictJoke, open=True):
    pass


# Reading.


def test_an_undeclared_keyword_reads_as_an_attribute_and_by_key() -> None:
    ev = Event(msg="hi", n=3)
    assert (ev.msg, ev.n) == ("hi", 3)
    assert (ev["msg"], ev.get("msg"), ev.get("missing", "d")) == ("hi", "hi", "d")
    assert "msg" in ev
    assert "missing" not in ev
    assert list(ev.keys()) == ["msg", "n"]
    assert list(ev.values()) == ["hi", 3]
    assert dict(ev.items()) == ev.to_dict() == ev.model_dump() == {"msg": "hi", "n": 3}
    assert len(ev) == 2
    assert list(ev) == ["msg", "n"]
    with pytest.raises(AttributeError, match=r"^'Event' object has no attribute 'nope'$"):
        _ = ev.nope


def test_free_fields_sit_beside_declared_ones_of_any_event() -> None:
    stop = StopEvent(result=1, extra=2)
    assert (stop.result, stop.extra) == (1, 2)
    start = StartEvent(topic="owls", n=3)
    assert (start.topic, start.n) == ("owls", 3)
    joke = Joke(text="a", mood="grim")  # type: ignore[call-arg]
    assert joke.mood == "grim"
    assert joke.to_dict() == {"text": "a", "rating": 0, "mood": "grim"}
    failed = StepFailedEvent(
        step_name="s",
        input_event=Event(),
        exception_type="ValueError",
        exception_message="m",
        attempts=1,
        note="seen",
    )
    assert failed.note == "seen"


def test_data_holds_the_free_fields_alone_read_only() -> None:
    joke = Joke(text="a", mood="grim")  # type: ignore[call-arg]
    assert joke._data == {"mood": "grim"}
    assert Joke(text="a")._data == {}
    with pytest.raises(TypeError, match=r"^an event's free fields cannot change"):
        joke._data["mood"] = "glad"  # type: ignore[index]


def test_equality_and_repr_count_free_fields_and_hashing_ignores_them() -> None:
    assert Event(msg="hi") == Event(msg="hi")
    assert Event(msg="hi") != Event(msg="ho")
    assert Event(msg="hi") != Event()
    assert StopEvent(result=1, extra=2) != StopEvent(result=1)
    assert repr(StopEvent(result=1, extra=2)) == "StopEvent(result=1, extra=2)"
    assert repr(Event(msg="hi")) == "Event(msg='hi')"
    # Free values need not be hashable; equal events still hash alike.
    assert hash(Event(tags=["a"])) == hash(Event(tags=["a"]))


def test_a_keyword_that_names_a_declared_field_is_that_field() -> None:
    joke = Joke(text="a", rating=2)
    assert joke._data == {}
    with pytest.raises(ValueError, match=r"rating must be >= 0"):
        Joke(text="a", rating=-1)
    # Saved data whose free fields name a field the class declares now.
    assert Joke(text="a", _extra={"rating": 3, "mood": "x"}) == Joke(  # type: ignore[call-arg]
        text="a", rating=3, mood="x"
    )
    # A keyword given flat wins over the same name among saved free fields.
    assert Joke(text="a", mood="flat", _extra={"mood": "saved"}).mood == "flat"  # type: ignore[call-arg]


def test_the_incumbents_data_mapping_gives_free_fields() -> None:
    assert Event(_data={"msg": "hi"}) == Event(msg="hi")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"^Event\(_data=\.\.\.\) takes the free fields as a"):
        Event(_data=5)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"^Event\(_extra=\.\.\.\) takes the free fields as a"):
        Event(_extra={1: "one"})  # type: ignore[call-arg]


def test_a_free_field_takes_precedence_over_a_method_of_its_name() -> None:
    ev = Event(keys=["k"], get="g")
    assert (ev.keys, ev.get) == (["k"], "g")
    assert ev["keys"] == ["k"]
    assert Event().keys() == {}.keys()


def test_a_free_field_with_a_leading_underscore_is_read_by_key_only() -> None:
    ev = Event(_open="x", _exception="y")
    assert (ev["_open"], ev.get("_exception")) == ("x", "y")
    assert ev._open is True  # the class's own attribute, untouched
    assert StepFailedEvent(
        step_name="s",
        input_event=ev,
        exception_type="E",
        exception_message="m",
        attempts=1,
        _exception="z",
    ).exception.args == ("m",)


# Frozen, as every event.


def test_free_fields_cannot_change() -> None:
    ev = Event(msg="hi")
    with pytest.raises(
        attrs.exceptions.FrozenInstanceError,
        match=r"^Event is frozen, so ev\.msg = \.\.\. is not possible: derive a new event "
        r"with ev\.model_copy\(update=\{'msg': \.\.\.\}\)",
    ):
        ev.msg = "ho"
    with pytest.raises(TypeError, match=r"^Event is frozen, so ev\['k'\] = \.\.\. is not"):
        ev["k"] = 1
    assert ev.model_copy(update={"msg": "ho", "k": 1}) == Event(msg="ho", k=1)
    assert attrs.evolve(ev, k=1) == Event(msg="hi", k=1)  # type: ignore[misc]
    assert ev == Event(msg="hi")


# open=False.


def test_a_class_that_says_open_false_refuses_free_fields_and_so_do_its_subclasses() -> None:
    message = (
        r"^{0} has no field 'mood'; its fields are: text \(declare the field in the class: "
        r"{0} is open=False, so it takes no free fields\)$"
    )
    for cls in (StrictJoke, StricterJoke):
        with pytest.raises(TypeError, match=message.format(cls.__name__)):
            cls(text="a", mood="grim")  # type: ignore[call-arg]
        with pytest.raises(ContextSerdeError, match=f"{cls.__name__} has no field 'mood'"):
            decode_fields(cls, {"text": "a", "mood": "grim"})
    assert Loosened(text="a", mood="grim").mood == "grim"  # type: ignore[call-arg]


def test_a_misspelt_required_field_names_the_free_field_it_became() -> None:
    with pytest.raises(
        TypeError,
        match=r"^Joke is missing required field\(s\): text \(it got free field\(s\) txt: "
        r"a misspelling\?\)$",
    ):
        Joke(txt="a")  # type: ignore[call-arg]


# Encodings.


EXAMPLES = [
    Event(msg="hi"),
    Event(nested=Joke(text="inner", mood="x"), items=[1, {"a": None}]),  # type: ignore[call-arg]
    StartEvent(topic="owls", n=3),
    StopEvent(result={"k": [1, 2]}, extra=1.5),
    Joke(text="a", rating=1, mood="grim"),  # type: ignore[call-arg]
    InputRequiredEvent(prefix="?", user="ann"),
    HumanResponseEvent(response="yes", user="ann"),
]


@pytest.mark.parametrize("event", EXAMPLES, ids=repr)
def test_free_fields_round_trip_through_every_encoding(event: Event) -> None:
    data = json.loads(json.dumps(encode_event(event)))
    assert decode_event(data) == event
    flat = json.loads(json.dumps(encode_fields(event)))
    assert decode_fields(type(event), flat) == event
    assert type(event).model_validate_json(event.model_dump_json()) == event
    # As llama-index-workflows dumps them: the free fields under "_data".
    incumbent = {k: v for k, v in flat.items() if k not in event._data}
    incumbent["_data"] = {k: flat[k] for k in event._data}
    assert type(event).model_validate(incumbent) == event
    assert pickle.loads(pickle.dumps(event)) == event
    assert copy.deepcopy(event) == event
    assert copy.copy(event) == event


def test_the_journal_writes_free_fields_under_extra_only_when_there_are_some() -> None:
    assert encode_event(StopEvent(result=1, extra=2))["fields"] == {
        "_extra": {"extra": 2},
        "result": 1,
    }
    assert encode_event(StopEvent(result=1))["fields"] == {"result": 1}
    assert encode_event(StartEvent())["fields"] == {}
    # The flat forms (the server's values, model_dump) put them beside the others.
    assert encode_fields(StopEvent(result=1, extra=2)) == {"result": 1, "extra": 2}


def test_data_written_before_every_event_took_free_fields_still_reads() -> None:
    # Open events always wrote "_extra", closed ones never did.
    old_open = {
        "__anyflow_event__": "anyflow.events:InputRequiredEvent",
        "fields": {"_extra": {}, "prefix": "Which room?"},
    }
    assert decode_event(old_open) == InputRequiredEvent(prefix="Which room?")
    old_start = {
        "__anyflow_event__": "anyflow.events:StartEvent",
        "fields": {"_extra": {"topic": "owls"}},
    }
    assert decode_event(old_start) == StartEvent(topic="owls")
    old_closed = {"__anyflow_event__": "anyflow.events:StopEvent", "fields": {"result": 1}}
    assert decode_event(old_closed) == StopEvent(result=1)


def test_a_free_value_json_cannot_hold_is_refused_with_its_path() -> None:
    with pytest.raises(ContextSerdeError, match=r"inf at \$\.fields\._extra\.x is not a finite"):
        encode_event(Event(x=float("inf")))
    with pytest.raises(ContextSerdeError, match=r"object value at \$\.fields\._extra\.x is not"):
        encode_event(Event(x=object()))


def test_declared_fields_keep_their_types_when_read_back() -> None:
    with pytest.raises(ContextSerdeError, match=r"field 'rating' of Joke .* does not fit"):
        decode_fields(Joke, {"text": "a", "rating": "high", "mood": "grim"})
    with pytest.raises(
        ContextSerdeError, match=r"^the free fields of Joke at \$\.fields\._extra are an object"
    ):
        decode_event(
            {
                "__anyflow_event__": "tests.test_free_fields:Joke",
                "fields": {"text": "a", "_extra": ["not", "a", "mapping"]},
            }
        )


# In runs: routing by class, sending, streaming, saving a context.


class Ping(Event):
    n: int


class Relay(Workflow):
    """Passes an ad hoc field along: step to step, to the stream, to the result."""

    @step
    async def start(self, ev: StartEvent, ctx: Context) -> Ping | None:
        ctx.write_event_to_stream(Event(msg=f"starting {ev.topic}"))
        ctx.send_event(Ping(n=1, note=ev.topic))  # type: ignore[call-arg]
        return None

    @step
    async def ping(self, ev: Ping) -> StopEvent:
        return StopEvent(result=ev.note, seen=ev.n)


async def test_free_fields_travel_through_a_run_and_routing_stays_by_class() -> None:
    async with Relay().run(topic="owls") as handler:
        streamed = [ev async for ev in handler.stream_events()]
        assert await handler == "owls"
    assert streamed[0] == Event(msg="starting owls")
    assert streamed[-1] == StopEvent(result="owls", seen=1)


class Interview(Workflow):
    """Asks, with ad hoc fields on the question and the answer, and waits."""

    @step
    async def ask(self, ev: StartEvent, ctx: Context) -> StopEvent:
        answer = await ctx.wait_for_event(
            HumanResponseEvent,
            waiter_event=InputRequiredEvent(prefix="Name?", field="name", hint=ev.hint),
        )
        return StopEvent(result=answer.response, mood=answer.mood, asked=ev.hint)


async def test_free_fields_survive_a_saved_and_restored_context() -> None:
    saved: str | None = None
    async with Interview().run(hint={"lang": "en"}) as handler:
        async for ev in handler.stream_events():
            if isinstance(ev, InputRequiredEvent):
                assert (ev.field, ev.hint) == ("name", {"lang": "en"})
                saved = json.dumps(handler.ctx.to_dict())
                await handler.cancel_run()
    assert saved is not None
    data: dict[str, Any] = json.loads(saved)
    (question,) = data["run"]["memos"][0]["published"].values()
    assert question["fields"]["_extra"] == {"field": "name", "hint": {"lang": "en"}}

    wf = Interview()
    async with wf.run(ctx=Context.from_dict(wf, data)) as handler:
        async for ev in handler.stream_events(expose_internal=True):
            if isinstance(ev, WorkflowIdleEvent):
                handler.send_event(HumanResponseEvent(response="Ann", mood="glad"))
            last = ev
        assert await handler == "Ann"
    assert last == StopEvent(result="Ann", mood="glad", asked={"lang": "en"})
