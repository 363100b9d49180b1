"""JSON Schemas of event classes: each accepts what anyflow writes for an event
and rejects what anyflow's decoder would refuse.

``jsonschema`` is not a dependency, so ``check`` below is a small validator for
the keywords ``event_schema`` uses (draft 2020-12 meanings); its own test pins
that it rejects what it should, so a passing schema test means something.
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs
import pytest

from anyflow import (
    Event,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StepFailedEvent,
    StopEvent,
    WorkflowTimedOutEvent,
)
from anyflow.errors import ContextSerdeError
from anyflow.serialization import decode_event, encode_event, event_schema, type_name


def errors(schema: Any, value: Any, root: Any = None, path: str = "$") -> list[str]:
    """Where ``value`` breaks ``schema``: empty if it is valid."""
    root = schema if root is None else root
    if schema is True or schema == {}:
        return []
    if schema is False:
        return [f"{path}: nothing is allowed here"]
    if "$ref" in schema:
        target = root
        for part in schema["$ref"].removeprefix("#").strip("/").split("/"):
            if part:
                target = target[part]
        return errors(target, value, root, path)
    if "anyOf" in schema and all(errors(o, value, root, path) for o in schema["anyOf"]):
        return [f"{path}: matches no option"]
    if "enum" in schema and not any(_same(value, v) for v in schema["enum"]):
        return [f"{path}: {value!r} not in {schema['enum']}"]
    kind = schema.get("type")
    if kind is not None and not _is(kind, value):
        return [f"{path}: {value!r} is not {kind}"]
    found: list[str] = []
    if isinstance(value, dict):
        props = schema.get("properties", {})
        found += [f"{path}: missing {k}" for k in schema.get("required", []) if k not in value]
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            sub = props.get(key, extra)
            found += errors(sub, item, root, f"{path}.{key}")
    if isinstance(value, list):
        prefix = schema.get("prefixItems", [])
        for index, item in enumerate(value):
            sub = prefix[index] if index < len(prefix) else schema.get("items", True)
            found += errors(sub, item, root, f"{path}[{index}]")
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", 1e9):
            found.append(f"{path}: wrong length {len(value)}")
        if schema.get("uniqueItems") and len({json.dumps(v) for v in value}) < len(value):
            found.append(f"{path}: repeated items")
    return found


def _is(kind: str, value: Any) -> bool:
    return {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "null": value is None,
    }[kind]


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def test_the_validator_rejects_what_it_should() -> None:
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer"},
            "t": {"prefixItems": [{"type": "string"}], "items": False},
        },
        "required": ["n"],
        "additionalProperties": False,
    }
    assert errors(schema, {"n": 1, "t": ["a"]}) == []
    assert errors(schema, {"n": True})
    assert errors(schema, {})
    assert errors(schema, {"n": 1, "x": 0})
    assert errors(schema, {"n": 1, "t": ["a", "b"]})
    assert errors({"anyOf": [{"type": "null"}, {"enum": ["a"]}]}, "b")
    assert errors({"type": "array", "uniqueItems": True}, [1, 1])


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.frozen
class Point:
    x: float
    y: float = 0.0


class Inner(Event):
    """An event carried inside another."""

    note: str


class Everything(Event, open=False):  # closed: unknown keys are errors
    """One field of every supported kind."""

    name: str
    count: int
    ratio: float
    flag: bool
    maybe: int | None = None
    mode: Literal["fast", "slow"] = "fast"
    numbers: list[int] = []  # noqa: RUF012 - anyflow gives each event its own copy
    pair: tuple[int, str] = (0, "")
    names: tuple[str, ...] = ()
    seq: Sequence[float] = ()
    scores: dict[str, int] = {}  # noqa: RUF012
    weights: Mapping[str, float] = {}
    point: Point | None = None
    inner: Inner | None = None
    color: Color = Color.RED
    anything: Any = None
    token: str = attrs.field(factory=lambda: uuid.uuid4().hex)


def sample() -> dict[str, Any]:
    """A full instance as anyflow itself writes it."""
    ev = Everything(
        name="a",
        count=2,
        ratio=0.5,
        flag=True,
        maybe=3,
        mode="slow",
        numbers=[1, 2],
        pair=(1, "x"),
        names=("p", "q"),
        seq=[1.5],
        scores={"a": 1},
        weights={"w": 2.0},
        point=Point(x=1.0, y=2.0),
        inner=Inner(note="hi"),
        color=Color.BLUE,
        anything={"free": [1, "form"]},
    )
    fields: dict[str, Any] = json.loads(json.dumps(encode_event(ev)["fields"]))
    return fields


def decodes(cls: type[Event], fields: Any) -> bool:
    """Whether anyflow's decoder reads ``fields`` as a ``cls``."""
    try:
        decode_event({"__anyflow_event__": type_name(cls), "fields": fields})
    except ContextSerdeError:
        return False
    except Exception:
        # The decoder lets some cattrs errors through unwrapped (a bad list item,
        # a value outside a Literal); still a refusal.
        return False
    return True


def test_schema_of_every_field_kind() -> None:
    schema = event_schema(Everything)
    props = schema["properties"]

    assert schema["type"] == "object"
    assert schema["title"] == "Everything"
    assert schema["description"] == "One field of every supported kind."
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["name", "count", "ratio", "flag"]
    assert props["name"] == {"type": "string"}
    assert props["count"] == {"type": "integer"}
    assert props["ratio"] == {"type": "number"}
    assert props["flag"] == {"type": "boolean"}
    assert props["maybe"] == {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None}
    assert props["mode"] == {"type": "string", "enum": ["fast", "slow"], "default": "fast"}
    assert props["numbers"] == {"type": "array", "items": {"type": "integer"}, "default": []}
    assert props["pair"] == {
        "type": "array",
        "prefixItems": [{"type": "integer"}, {"type": "string"}],
        "items": False,
        "minItems": 2,
        "maxItems": 2,
        "default": [0, ""],
    }
    assert props["names"] == {"type": "array", "items": {"type": "string"}, "default": []}
    assert props["seq"]["items"] == {"type": "number"}
    assert props["scores"] == {
        "type": "object",
        "additionalProperties": {"type": "integer"},
        "default": {},
    }
    assert props["weights"]["additionalProperties"] == {"type": "number"}
    point = props["point"]["anyOf"][0]
    assert point == {
        "type": "object",
        "title": "Point",
        "properties": {"x": {"type": "number"}, "y": {"type": "number", "default": 0.0}},
        "required": ["x"],
        "additionalProperties": False,
    }
    inner = props["inner"]["anyOf"][0]
    assert inner["required"] == ["__anyflow_event__", "fields"]
    assert inner["properties"]["fields"]["title"] == "Inner"
    assert inner["properties"]["fields"]["required"] == ["note"]
    assert props["color"] == {
        "title": "Color",
        "type": "string",
        "enum": ["red", "blue"],
        "default": "red",
    }
    assert props["anything"] == {"default": None}
    assert props["token"] == {"type": "string"}, "a factory's value is never shown"
    json.dumps(schema)


def test_schema_accepts_what_anyflow_writes_and_the_decoder_reads() -> None:
    schema = event_schema(Everything)
    data = sample()
    assert errors(schema, data) == []
    assert decodes(Everything, data)
    minimal = {"name": "a", "count": 1, "ratio": 1, "flag": False}  # an int is a number
    assert errors(schema, minimal) == []
    assert decodes(Everything, minimal)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"count": "2"}, "a string for an int"),
        ({"count": True}, "a bool for an int"),
        ({"ratio": "0.5"}, "a string for a float"),
        ({"flag": 1}, "an int for a bool"),
        ({"maybe": "x"}, "neither int nor null"),
        ({"mode": "medium"}, "not a Literal value"),
        ({"numbers": [1, "2"]}, "a wrong item"),
        ({"numbers": "12"}, "a string for a list"),
        ({"scores": {"a": "1"}}, "a wrong mapping value"),
        ({"point": {"x": 1.0, "z": 2.0}}, "an unknown key of a nested attrs class"),
        ({"point": {"y": 1.0}}, "a nested attrs class without a required field"),
        ({"inner": {"note": "bare"}}, "a nested event without its tag"),
        ({"color": "green"}, "not an enum value"),
        ({"colour": "red"}, "an unknown field of a closed event"),
        ({"name": None}, "null for a str"),
    ],
)
def test_schema_rejects_what_the_decoder_refuses(change: dict[str, Any], why: str) -> None:
    data = {**sample(), **change}
    assert errors(event_schema(Everything), data), why
    assert not decodes(Everything, data), why


def test_schema_rejects_missing_required_fields() -> None:
    data = sample()
    del data["count"]
    assert errors(event_schema(Everything), data) == ["$: missing count"]
    assert not decodes(Everything, data)


class Tagged(StartEvent):
    tags: set[str] = set()  # noqa: RUF012
    frozen: frozenset[int] = frozenset({2, 1})


def test_sets_are_arrays_of_unique_items() -> None:
    props = event_schema(Tagged)["properties"]
    assert props["tags"] == {
        "type": "array",
        "items": {"type": "string"},
        "uniqueItems": True,
        "default": [],
    }
    assert props["frozen"]["default"] == [1, 2]
    assert errors(event_schema(Tagged), {"tags": ["a", "a"]})
    assert errors(event_schema(Tagged), {"tags": ["a", "b"]}) == []


class Loose(StartEvent):
    pass


class Strict(StartEvent, open=False):
    topic: str


class StrictToo(Strict):
    pass


class Wide(StartEvent):
    topic: str


class Asking(InputRequiredEvent):
    pass


class Answered(HumanResponseEvent):
    choice: int


def test_events_take_free_fields_unless_they_say_open_false() -> None:
    for cls, is_open in [
        (StartEvent, True),
        (Loose, True),
        (Strict, False),  # says open=False: its typos are errors
        (StrictToo, False),  # and so are its subclasses'
        (Wide, True),  # declares fields and takes free ones beside them
        (InputRequiredEvent, True),
        (Asking, True),
        (HumanResponseEvent, True),
        (Answered, True),
        (StopEvent, True),
        (WorkflowTimedOutEvent, True),
    ]:
        schema = event_schema(cls)
        assert schema["additionalProperties"] is is_open, cls
        assert "_extra" not in schema["properties"], "free fields are not a field"
        free = {**dict.fromkeys(schema["required"], 1), "topic": "owls", "extra": 1}
        if is_open:
            assert errors(schema, free) == [], cls
            assert decodes(cls, free), cls
        else:
            assert errors(schema, free), cls
            assert not decodes(cls, free), cls
    assert event_schema(Wide)["required"] == ["topic"]
    assert event_schema(InputRequiredEvent)["properties"] == {
        "prefix": {"type": "string", "default": ""}
    }


class _Private(StartEvent):
    """Implementation detail."""

    x: int


@attrs.frozen
class _Hidden:
    y: int


class _Shade(enum.Enum):
    DARK = 1


class UsesPrivate(Event):
    hidden: _Hidden
    shade: _Shade


def test_private_classes_do_not_leak_into_titles() -> None:
    assert event_schema(_Private)["title"] == "StartEvent"
    schema = event_schema(UsesPrivate)
    assert schema["properties"]["hidden"] == {
        "type": "object",
        "properties": {"y": {"type": "integer"}},
        "required": ["y"],
        "additionalProperties": False,
    }
    assert schema["properties"]["shade"] == {"type": "integer", "enum": [1]}
    for cls in (StartEvent, Strict, InputRequiredEvent, Answered, _Private, UsesPrivate):
        text = json.dumps(event_schema(cls))
        assert "_OpenEvent" not in text
        for private in ("_Private", "_Hidden", "_Shade"):
            assert private not in text


@attrs.frozen
class TreeNode:
    value: int
    children: tuple[TreeNode, ...] = ()


class Forest(Event):
    trees: list[TreeNode]
    parent: Forest | None = None


def test_recursive_classes_are_described_once_and_referred_to() -> None:
    schema = event_schema(Forest)
    assert schema["properties"]["trees"]["items"] == {"$ref": "#/$defs/TreeNode"}
    tree = schema["$defs"]["TreeNode"]
    assert tree["properties"]["children"]["items"] == {"$ref": "#/$defs/TreeNode"}
    parent = schema["properties"]["parent"]["anyOf"][0]
    assert parent["properties"]["fields"] == {"$ref": "#"}

    good = encode_event(
        Forest(
            trees=[TreeNode(1, (TreeNode(2),))],
            parent=Forest(trees=[TreeNode(3)]),
        )
    )["fields"]
    good = json.loads(json.dumps(good))
    assert errors(schema, good) == []
    assert decodes(Forest, good)
    bad = {"trees": [{"value": 1, "children": [{"value": "deep"}]}]}
    assert errors(schema, bad) == ["$.trees[0].children[0].value: 'deep' is not integer"]
    assert not decodes(Forest, bad)


def test_a_nested_plain_event_takes_any_event() -> None:
    schema = event_schema(StepFailedEvent)
    data = json.loads(
        json.dumps(
            encode_event(
                StepFailedEvent(
                    step_name="s",
                    input_event=Inner(note="n"),
                    exception_type="E",
                    exception_message="m",
                    attempts=1,
                )
            )["fields"]
        )
    )
    assert errors(schema, data) == []
    assert errors(schema, {**data, "input_event": {"note": "untagged"}})


def test_an_annotation_that_cannot_be_resolved_is_left_open() -> None:
    class Local:
        pass

    class Holder(Event):
        known: int
        unknown: Local

    schema = event_schema(Holder)
    assert schema["properties"] == {"known": {"type": "integer"}, "unknown": {}}
    assert schema["required"] == ["known", "unknown"]


def test_schemas_are_fresh_and_only_for_events() -> None:
    first = event_schema(Strict)
    first["properties"]["topic"]["type"] = "integer"
    assert event_schema(Strict)["properties"]["topic"] == {"type": "string"}
    with pytest.raises(
        TypeError, match=r"^event_schema takes an Event subclass, not <class 'int'>$"
    ):
        event_schema(int)  # type: ignore[arg-type]
