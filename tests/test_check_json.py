"""The JSON-safety check every recorded event goes through: its quick pass
(no path written per value) accepts and refuses exactly what the walk that
names the path of the first bad value does."""

from __future__ import annotations

import collections
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anyflow import ContextSerdeError
from anyflow.serialization._events import _explain, check_json


class Name(str):
    pass


class Number(int):
    pass


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # inf and nan included: refused
    st.text(max_size=3),
    st.builds(Name, st.text(max_size=3)),
    st.builds(Number, st.integers()),
    st.sampled_from([b"bytes", {1, 2}, object()]),  # refused
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.one_of(st.text(max_size=2), st.integers()), inner, max_size=3),
        st.dictionaries(st.text(max_size=2), inner, max_size=3).map(collections.OrderedDict),
    ),
    max_leaves=12,
)


def _verdict(check: Any, value: Any) -> str | None:
    try:
        check(value, "$")
    except ContextSerdeError as exc:
        return str(exc)
    return None


@given(values)
def test_the_quick_check_agrees_with_the_walk_that_names_the_path(value: Any) -> None:
    assert _verdict(check_json, value) == _verdict(_explain, value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": [1, {"b": float("nan")}]}, r"^nan at \$\.a\[1\]\.b is not a finite number"),
        ({"a": {3: "x"}}, r"^key 3 at \$\.a is not a string"),
        ([b"x"], r"^bytes value at \$\[0\] is not JSON-safe"),
    ],
)
def test_a_refused_value_is_named_by_its_path(value: Any, message: str) -> None:
    with pytest.raises(ContextSerdeError, match=message):
        check_json(value, "$")
