"""``anyflow.serialization.records``: records declared outside the engine, read
with errors that name their JSON path (no concurrency here: plain functions)."""

from __future__ import annotations

import re

import attrs
import pytest

from anyflow.errors import ContextSerdeError
from anyflow.serialization import encode_value, records


@attrs.frozen
class Part:
    label: str
    size: int = 0


@attrs.frozen
class Whole:
    name: str
    main: Part | None = None
    parts: tuple[Part, ...] = ()


@attrs.frozen
class Strict:
    name: str


records.register(Part, absent=("size",), ignore_unknown=True)
records.register(Whole, absent=("main", "parts"), ignore_unknown=True)
records.register(Strict)


def test_a_record_reads_its_nested_records_and_drops_unknown_keys_when_asked() -> None:
    data = {
        "name": "w",
        "main": {"label": "m", "size": 2, "colour": "red"},
        "parts": [{"label": "a"}, {"label": "b", "size": 1}],
        "newer": True,
    }

    whole = records.read(data, Whole, "$")

    assert whole == Whole("w", Part("m", 2), (Part("a"), Part("b", 1)))
    assert records.read({"name": "w", "main": None}, Whole, "$") == Whole("w")
    assert encode_value(whole, "$") == {
        "name": "w",
        "main": {"label": "m", "size": 2},
        "parts": [{"label": "a", "size": 0}, {"label": "b", "size": 1}],
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"main": None}, "missing $.name"),
        ({"name": 1}, "$.name has a int, which does not fit"),
        ({"name": "w", "main": {"size": 1}}, "missing $.main.label"),
        ({"name": "w", "main": ["m"]}, "expected Part (an object) at $.main, got ['m']"),
        ({"name": "w", "parts": {"label": "a"}}, "$.parts must be a list, not dict"),
        (
            {"name": "w", "parts": [{"label": "a"}, {"label": "b", "size": "1"}]},
            "$.parts[1].size has a str, which does not fit",
        ),
    ],
)
def test_what_does_not_fit_is_named_by_its_path(data: object, message: str) -> None:
    with pytest.raises(ContextSerdeError, match=f"^{re.escape(message)}$"):
        records.read(data, Whole, "$")


def test_unknown_keys_are_refused_unless_the_record_ignores_them() -> None:
    with pytest.raises(ContextSerdeError, match=r"unknown fields of Strict at \$: \['extra'\]"):
        records.read({"name": "s", "extra": 1}, Strict, "$")
