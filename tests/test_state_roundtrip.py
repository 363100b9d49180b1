"""Every reducer state a run can reach survives JSON: saving what was read back
gives the same data (nothing is lost or changed on the way)."""

from __future__ import annotations

import json

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
from anyflow.serialization import decode_state, encode_state

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
