"""Rule 7 of the reducer: a join step (``StepSpec.slots``) is given its events a
set at a time.

Events are tiny plain classes (plain ``object`` equality is identity), as in
``test_reducer.py``.
"""

from __future__ import annotations

import pytest

from anyflow._core.commands import Finish, Publish, ScheduleTimer, StartWorker
from anyflow._core.reducer import TickRejected, reduce
from anyflow._core.state import (
    Completed,
    Delivery,
    JoinBuffer,
    RunSpec,
    RunState,
    StepSpec,
    Worker,
)
from anyflow._core.ticks import (
    EventSent,
    RunResumed,
    RunStarted,
    StepCompleted,
    StepFailed,
    TimerFired,
)


class Go:
    """The start event."""


class H:
    pass


class SubH(H):
    pass


class B:
    pass


class Fail:
    """The failure event a catcher gets."""


class S:
    """The stop type."""


def spec(*slots: type, num_workers: int = 1, also: tuple[StepSpec, ...] = ()) -> RunSpec:
    accepts = tuple(dict.fromkeys(slots))
    steps = {
        "go": StepSpec("go", (Go,)),
        "join": StepSpec("join", accepts, num_workers=num_workers, slots=slots),
        "k": StepSpec("k", (Fail,)),
        **{s.name: s for s in also},
    }
    return RunSpec(steps=steps, stop_types=(S,), catchers={"join": ("k", 1)})


def started(run_spec: RunSpec) -> RunState:
    """A running run whose start step (worker 0) is executing."""
    state, _ = reduce(RunState.initial(run_spec), RunStarted(Go(), 0.0))
    return state


def send(state: RunState, *events: object, step: str | None = None) -> RunState:
    for event in events:
        state, _ = reduce(state, EventSent(event, step))
    return state


def test_events_wait_in_the_join_until_the_set_is_complete() -> None:
    h, b = H(), B()
    state = started(spec(H, B))
    state, commands = reduce(state, EventSent(h))
    assert commands == []
    assert [w.step for w in state.workers.values()] == ["go"]
    assert state.joins["join"].events.items() == [h]
    state, commands = reduce(state, EventSent(b))
    # The set leaves the buffer as one delivery, with the completing event.
    assert commands == [StartWorker(1, "join", Delivery(2, b, bound=(h, b)))]
    assert "join" not in state.joins
    assert state.workers[1] == Worker("join", Delivery(2, b, bound=(h, b)))


def test_slots_bind_by_type_whatever_the_order_of_arrival() -> None:
    h, b = H(), B()
    state = send(started(spec(H, B)), b)
    _, commands = reduce(state, EventSent(h))
    assert commands == [StartWorker(1, "join", Delivery(2, h, bound=(h, b)))]


def test_same_type_slots_bind_in_arrival_order_and_sets_repeat() -> None:
    first, second, third, fourth = H(), H(), H(), H()
    state = started(spec(H, H, num_workers=2))
    state = send(state, first)
    state, commands = reduce(state, EventSent(second))
    assert commands == [StartWorker(1, "join", Delivery(2, second, bound=(first, second)))]
    state = send(state, third)
    assert state.joins["join"].events.items() == [third]
    state, commands = reduce(state, EventSent(fourth))
    assert commands == [StartWorker(2, "join", Delivery(4, fourth, bound=(third, fourth)))]
    assert state.joins == {}


def test_events_beyond_a_set_stay_for_the_next_one() -> None:
    h1, h2, h3, b1, b2 = H(), H(), H(), B(), B()
    state = send(started(spec(H, B, num_workers=3)), h1, h2, h3)
    assert state.joins["join"].fits == (3, 0)
    state, commands = reduce(state, EventSent(b1))
    assert commands == [StartWorker(1, "join", Delivery(4, b1, bound=(h1, b1)))]
    assert state.joins["join"] == JoinBuffer.of([h2, h3], (H, B))
    state, commands = reduce(state, EventSent(b2))
    assert commands == [StartWorker(2, "join", Delivery(5, b2, bound=(h2, b2)))]
    assert state.joins["join"].events.items() == [h3]


def test_a_subclass_fills_a_base_class_slot_unless_a_later_slot_needs_it() -> None:
    parent, child = H(), SubH()
    # The child came first: the H slot would take it and leave SubH empty, so
    # the H slot takes the younger parent instead.
    state = send(started(spec(H, SubH)), child)
    _, commands = reduce(state, EventSent(parent))
    assert commands == [StartWorker(1, "join", Delivery(2, parent, bound=(parent, child)))]
    # Two children fill both slots, oldest first.
    c1, c2 = SubH(), SubH()
    state = send(started(spec(H, SubH)), c1)
    _, commands = reduce(state, EventSent(c2))
    assert commands == [StartWorker(1, "join", Delivery(2, c2, bound=(c1, c2)))]


def test_complete_sets_queue_behind_the_step_s_workers() -> None:
    h1, b1, h2, b2 = H(), B(), H(), B()
    state = send(started(spec(H, B)), h1, b1, h2, b2)
    assert [w.delivery.bound for w in state.workers.values() if w.step == "join"] == [(h1, b1)]
    assert list(state.lanes["join"].queue) == [Delivery(4, b2, bound=(h2, b2))]
    state, commands = reduce(state, StepCompleted(1, None))
    assert commands == [StartWorker(2, "join", Delivery(4, b2, bound=(h2, b2)))]


def test_a_set_sent_to_the_join_step_by_name_is_held_there() -> None:
    h, b = H(), B()
    state = send(started(spec(H, B)), h, step="join")
    assert state.joins["join"].events.items() == [h]
    _, commands = reduce(state, EventSent(b, "join"))
    assert commands == [StartWorker(1, "join", Delivery(2, b, bound=(h, b)))]


def test_an_event_routed_to_a_join_and_a_plain_step_reaches_both() -> None:
    h, b = H(), B()
    other = StepSpec("watch", (H,))
    state = started(spec(H, B, also=(other,)))
    state, commands = reduce(state, EventSent(h))
    assert commands == [StartWorker(1, "watch", Delivery(1, h))]
    assert state.joins["join"].events.items() == [h]
    _, commands = reduce(state, EventSent(b))
    assert commands == [StartWorker(2, "join", Delivery(2, b, bound=(h, b)))]


def test_a_retried_set_keeps_its_events() -> None:
    h, b = H(), B()
    state = send(started(spec(H, B)), h, b)
    error = ValueError("boom")
    state, commands = reduce(state, StepFailed(1, error, 2.0, 1.0))
    assert commands == [ScheduleTimer("retry-1", 3.0)]
    retried = Delivery(2, b, 2, error, 1.0, bound=(h, b), last_failed_at=1.0)
    assert state.retries["retry-1"] == Worker("join", retried, 3.0)
    _, commands = reduce(state, TimerFired("retry-1", 3.0))
    assert commands == [StartWorker(2, "join", retried)]


def test_a_set_that_fails_for_good_goes_to_the_catcher_and_is_not_joined_again() -> None:
    h, b, failure = H(), B(), Fail()
    state = send(started(spec(H, B)), h, b)
    state, commands = reduce(state, StepFailed(1, ValueError("boom"), None, 1.0, failure))
    assert commands == [StartWorker(2, "k", Delivery(3, failure))]
    assert state.joins == {}
    state, commands = reduce(state, StepCompleted(2, S()))
    assert isinstance(state.outcome, Completed)
    assert commands == [Finish(state.outcome)]


def test_a_resume_keeps_held_events_and_runs_an_interrupted_set_again() -> None:
    h1, b1, h2 = H(), B(), H()
    state = send(started(spec(H, B)), h1, b1, h2)
    assert state.workers[1] == Worker("join", Delivery(2, b1, bound=(h1, b1)))
    state, commands = reduce(state, RunResumed(5.0, recovered=True))
    # Both attempts (the start step's and the join's) start over.
    rerun = [c.delivery for c in commands if isinstance(c, StartWorker) and c.step == "join"]
    assert rerun == [Delivery(2, b1, bound=(h1, b1))]
    assert state.joins["join"].events.items() == [h2]
    b2 = B()
    state, _ = reduce(state, EventSent(b2))
    assert list(state.lanes["join"].queue) == [Delivery(4, b2, bound=(h2, b2))]


def test_holding_an_event_publishes_nothing_and_leaves_the_run_going() -> None:
    h = H()
    state = started(spec(H, B))
    state, commands = reduce(state, StepCompleted(0, h))
    assert commands == []
    assert state.status.value == "running"
    assert not any(isinstance(c, Publish) for c in commands)
    assert state.joins["join"].events.items() == [h]


def test_an_event_the_join_does_not_take_is_rejected_and_changes_nothing() -> None:
    state = started(spec(H, B))
    with pytest.raises(TickRejected):
        reduce(state, EventSent(Go(), "join"))
    assert state.joins == {}


def test_many_events_of_one_slot_do_not_bind_until_the_other_comes() -> None:
    state = started(spec(H, B, num_workers=1))
    held = [H() for _ in range(50)]
    state = send(state, *held)
    assert state.joins["join"].fits == (50, 0)
    assert state.joins["join"].events.total == 50
    b = B()
    state, commands = reduce(state, EventSent(b))
    assert commands == [StartWorker(1, "join", Delivery(51, b, bound=(held[0], b)))]
    assert state.joins["join"].fits == (49, 0)
