"""A saved run state that does not read says where: each corruption of a
golden state (``tests/golden/samples``) raises ``ContextSerdeError`` naming the
JSON path of what is wrong, and the fields older contexts lack still read."""

from __future__ import annotations

import copy
import json
from typing import Any

import attrs
import pytest

from anyflow import ContextSerdeError, Event
from anyflow.serialization import decode_state, encode_state
from tests.golden import samples

_STATES = samples.states()
_SAVED = {name: json.loads(json.dumps(encode_state(_STATES[name]))) for name in ("busy", "joined")}
_GONE = object()
"""A value that deletes the key."""


def _corrupt(name: str, keys: tuple[Any, ...], value: Any) -> Any:
    data = copy.deepcopy(_SAVED[name])
    *head, last = keys
    target = data
    for key in head:
        target = target[key]
    if value is _GONE:
        del target[last]
    else:
        target[last] = value
    return data


def _path(keys: tuple[Any, ...]) -> str:
    return "$.run" + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys)


# (state, keys to the value, the value put there, the path the error names
# when it is not the value's own)
_WRONG: list[tuple[str, tuple[Any, ...], Any, str | None]] = [
    ("busy", ("status",), "odd", None),
    ("busy", ("next_event_id",), "1", None),
    ("busy", ("next_worker_id",), _GONE, None),
    ("busy", ("queues",), [], None),
    ("busy", ("queues", "work"), {}, None),
    ("busy", ("queues", "nope"), [], "$.run.queues"),
    ("busy", ("queues", "work", 0), 3, None),
    ("busy", ("queues", "work", 0, "event_id"), "x", None),
    ("busy", ("queues", "work", 0, "event_id"), True, None),
    ("busy", ("queues", "work", 0, "event_id"), _GONE, None),
    ("busy", ("queues", "work", 0, "event"), {"a": 1}, None),
    ("busy", ("queues", "work", 0, "event", "fields", "n"), "x", None),
    ("busy", ("queues", "work", 0, "attempt"), 1.5, None),
    ("busy", ("queues", "work", 0, "last_error"), "boom", None),
    ("busy", ("executing", 0, "delivery", "last_error", "type"), 1, None),
    ("busy", ("queues", "work", 0, "first_failed_at"), "x", None),
    ("busy", ("queues", "work", 0, "extra"), 1, "$.run.queues.work[0]: ['extra']"),
    ("busy", ("executing",), {}, None),
    ("busy", ("executing", 0), "w", None),
    ("busy", ("executing", 0, "step"), "nope", None),
    ("busy", ("executing", 0, "step"), 3, None),
    ("busy", ("executing", 0, "delivery"), _GONE, None),
    ("busy", ("executing", 0, "delivery"), [], None),
    ("busy", ("executing", 0, "sent"), -1, None),
    ("busy", ("executing", 0, "sent"), "2", None),
    ("busy", ("waiting", 0, "waiter_id"), 3, None),
    ("busy", ("waiting", 0, "waiter_id"), _GONE, None),
    ("busy", ("waiting", 0, "event_types"), "x", None),
    ("busy", ("waiting", 0, "event_types", 1), "nowhere:X", None),
    ("busy", ("waiting", 0, "requirements"), "x", None),
    ("busy", ("waiting", 0, "requirements"), [[1]], None),
    ("busy", ("waiting", 0, "deadline"), "x", None),
    ("busy", ("waiting", 0, "budget"), True, None),
    ("busy", ("waiting", 0, "sent"), -2, None),
    ("busy", ("waiting", 1, "delivery", "event"), None, None),
    ("busy", ("retrying", 0, "step"), "nope", None),
    ("busy", ("retrying", 0, "delivery", "event_id"), None, None),
    ("busy", ("memos", 0, "step"), "nope", None),
    ("busy", ("memos", 0, "event_id"), "1", None),
    ("busy", ("memos", 0, "published"), [], None),
    ("busy", ("memos", 0, "published", "wait#1"), 3, None),
    ("busy", ("memos", 0, "answers"), _GONE, None),
    ("busy", ("memos", 0, "collected", "default", 0), {"event": 1}, None),
    ("busy", ("memos", 0, "collected", "default", 1, "result"), 3, None),
    ("busy", ("memos", 0, "collected", "default", 1, "result", 0), 3, None),
    ("busy", ("memos", 0, "sent"), [0, 1], None),
    ("busy", ("memos", 0, "deadlines"), {}, "$.run.memos[0]: ['deadlines']"),
    ("busy", ("unclaimed", 0), 5, None),
    ("busy", ("unclaimed", 0, "event"), 2, None),
    ("busy", ("unclaimed", 1, "step"), "nope", None),
    ("busy", ("collections", 0, "step"), "nope", None),
    ("busy", ("collections", 0, "buffer"), 5, None),
    ("busy", ("collections", 0, "events", 1), 5, None),
    ("busy", ("recoveries", "nope"), 1, "$.run.recoveries"),
    ("joined", ("queues", "pair", 0, "bound"), 3, None),
    ("joined", ("queues", "pair", 0, "bound", 1), 3, None),
    ("joined", ("executing", 0, "delivery", "first_started_at"), "x", None),
    ("joined", ("retrying", 0, "delivery", "last_failed_at"), [1], None),
    ("joined", ("joins", 0), "x", None),
    ("joined", ("joins", 0, "step"), "ask", "$.run.joins[0]"),
    ("joined", ("joins", 0, "events"), "x", None),
    ("joined", ("joins", 0, "events", 0), "x", None),
]


@pytest.mark.parametrize(("name", "keys", "value", "where"), _WRONG)
def test_a_wrong_value_is_named_by_its_path(
    name: str, keys: tuple[Any, ...], value: Any, where: str | None
) -> None:
    data = _corrupt(name, keys, value)
    with pytest.raises(ContextSerdeError) as caught:
        decode_state(data, _STATES[name].spec)
    assert (where or _path(keys)) in str(caught.value)


# Keys that contexts saved before them do not have, or hold null.
_TOLERATED: list[tuple[str, tuple[Any, ...], Any]] = [
    ("busy", ("queues", "work", 0, "first_failed_at"), _GONE),
    ("busy", ("waiting", 0, "deadline"), _GONE),
    ("busy", ("waiting", 0, "budget"), _GONE),
    ("busy", ("memos", 0, "collected"), _GONE),
    ("busy", ("memos", 0, "collected"), None),
    ("busy", ("memos", 0, "sent"), None),
    ("busy", ("unclaimed", 0, "step"), _GONE),
    ("joined", ("queues", "pair", 0, "bound"), None),
    ("joined", ("joins",), _GONE),
    ("joined", ("joins",), None),
]


@pytest.mark.parametrize(("name", "keys", "value"), _TOLERATED)
def test_a_key_older_contexts_lack_reads_as_its_default(
    name: str, keys: tuple[Any, ...], value: Any
) -> None:
    decode_state(_corrupt(name, keys, value), _STATES[name].spec)


class _Loose(Event):
    value: object = None


@pytest.mark.parametrize("check", [True, False])
def test_an_event_json_cannot_hold_is_named_even_when_the_rest_may_be_pickled(
    check: bool,
) -> None:
    busy = _STATES["busy"]
    worker = busy.workers[3]
    loose = attrs.evolve(worker.delivery, event=_Loose(value={1}))
    waiter = attrs.evolve(busy.waiting[6], requirements=(("value", {2}),))
    state = attrs.evolve(
        busy,
        workers={**busy.workers, 3: attrs.evolve(worker, delivery=loose)},
        waiting={**busy.waiting, 6: waiter},
    )
    with pytest.raises(
        ContextSerdeError,
        match=r"^set value at \$\.run\.executing\[0\]\.delivery\.event\.fields\.value ",
    ):
        encode_state(state, check=check)
    # A waiter's requirements are the caller's to pickle when it asks for that.
    alone = attrs.evolve(busy, waiting={**busy.waiting, 6: waiter})
    assert encode_state(alone, check=False)["waiting"][0]["requirements"] == [["value", {2}]]
    with pytest.raises(
        ContextSerdeError, match=r"at \$\.run\.waiting\[0\]\.requirements\[0\]\[1\] "
    ):
        encode_state(alone)
