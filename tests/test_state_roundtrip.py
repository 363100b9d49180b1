"""Every reducer state a run can reach survives JSON: saving what was read back
gives the same data (nothing is lost or changed on the way)."""

from __future__ import annotations

import json

from attrs import evolve as attrs_evolve
from hypothesis import given
from hypothesis import strategies as st

from anyflow import HumanResponseEvent, StartEvent
from anyflow._core.reducer import TickRejected, reduce
from anyflow._core.state import RunState
from anyflow._core.ticks import (
    CancelRequested,
    EventCollected,
    EventSent,
    RunStarted,
    StepCompleted,
    StepFailed,
    TimerFired,
    WaitAbandoned,
    WaitStarted,
)
from anyflow.serialization import decode_state, decode_tick, encode_state, encode_tick

from .serde_flows import HalfCollected, Item, Part

SPEC = HalfCollected()._spec


@given(st.data())
def test_saved_states_read_back_to_the_same_data(data: st.DataObject) -> None:
    state = RunState.initial(SPEC)
    state, _ = reduce(state, RunStarted(StartEvent(), 0.0))
    now = 0.0
    for _ in range(data.draw(st.integers(0, 25), label="ticks")):
        now += 1.0
        workers = sorted(state.workers)
        waiting = sorted(state.waiting)
        options = [
            EventSent(Item(n=data.draw(st.integers(0, 9))), external=True, now=now),
            EventSent(HumanResponseEvent(response=data.draw(st.text(max_size=3))), now=now),
        ]
        if workers:
            worker = data.draw(st.sampled_from(workers))
            options += [
                StepCompleted(worker, data.draw(st.sampled_from([None, Part(n=1)])), now),
                StepFailed(worker, ValueError("x"), data.draw(st.sampled_from([None, 2.0])), now),
                WaitStarted(worker, "wait#1", (HumanResponseEvent,), (), None, 5.0, now),
                EventCollected(worker, "default", Part(n=worker), [Part] * 3, now),
            ]
        if waiting:
            options.append(WaitAbandoned(data.draw(st.sampled_from(waiting)), now))
        if state.retries:
            options.append(TimerFired(data.draw(st.sampled_from(sorted(state.retries))), now))
        if data.draw(st.booleans(), label="cancel?") and not options:
            options.append(CancelRequested(now))
        tick = data.draw(st.sampled_from(options))
        try:
            state, _ = reduce(state, tick)
        except TickRejected:
            continue
        if state.status.finished:
            break
    saved = json.loads(json.dumps(encode_state(state)))
    again = encode_state(decode_state(saved, SPEC))
    assert again == saved


ticks = st.one_of(
    st.builds(RunStarted, st.builds(StartEvent, topic=st.text(max_size=3)), st.floats(0, 1e6)),
    st.builds(
        EventSent,
        st.builds(Item, n=st.integers()),
        st.none() | st.just("work"),
        st.booleans(),
        st.floats(0, 1e6),
    ),
    st.builds(StepCompleted, st.integers(0, 99), st.none() | st.builds(Part, n=st.integers())),
    st.builds(
        StepFailed,
        st.integers(0, 99),
        st.builds(ValueError, st.text(max_size=5)),
        st.none() | st.floats(0, 60),
        st.floats(0, 1e6),
    ),
    st.builds(
        EventCollected,
        st.integers(0, 99),
        st.text(max_size=3),
        st.builds(Part, n=st.integers()),
        st.lists(st.just(Part), max_size=3),
    ),
    st.builds(
        WaitStarted,
        st.integers(0, 99),
        st.text(max_size=3),
        st.just((HumanResponseEvent,)),
        st.lists(st.tuples(st.text(max_size=3), st.integers()), max_size=2).map(tuple),
        st.none() | st.builds(HumanResponseEvent, response=st.text(max_size=3)),
        st.none() | st.floats(0.1, 60),
    ),
    st.builds(WaitAbandoned, st.integers(0, 99)),
    st.builds(CancelRequested, st.floats(0, 1e6)),
    st.builds(TimerFired, st.text(max_size=8), st.floats(0, 1e6)),
)


def _comparable(tick: object) -> object:
    # Exceptions come back as SavedError (type name and message): compare those.
    error = getattr(tick, "error", None)
    if error is None:
        return tick
    name = getattr(error, "type_name", type(error).__name__)
    return (attrs_evolve(tick, error=None), name, str(error))


@given(ticks)
def test_every_tick_round_trips_through_json(tick: object) -> None:
    data = json.loads(json.dumps(encode_tick(tick)))  # type: ignore[arg-type]
    back = decode_tick(data)
    if isinstance(tick, EventCollected):
        assert isinstance(back, EventCollected)
        assert list(back.expected) == list(tick.expected)
        tick = attrs_evolve(tick, expected=tuple(tick.expected))
        back = attrs_evolve(back, expected=tuple(back.expected))
    assert _comparable(back) == _comparable(tick)


def test_a_bad_tick_says_where() -> None:
    import pytest

    from anyflow import ContextSerdeError

    with pytest.raises(ContextSerdeError, match=r"^expected a tick at \$\[3\]"):
        decode_tick({"tick": "Nope"}, "$[3]")
    with pytest.raises(ContextSerdeError, match=r"^missing \$\.now$"):
        decode_tick({"tick": "CancelRequested"})
    with pytest.raises(ContextSerdeError, match=r"^\$\.worker_id has a str, which does not fit$"):
        decode_tick({"tick": "WaitAbandoned", "worker_id": "3", "now": 0.0})
