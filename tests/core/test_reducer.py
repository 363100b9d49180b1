"""Example-based tests of the reducer's rules (see ``anyflow/_core/reducer.py``).

Events are tiny plain classes: the core treats them as opaque objects and routes
them by ``issubclass`` against ``StepSpec.accepts``.  Plain ``object`` equality
is identity, so two events of one type are always distinguishable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import pytest

from anyflow._core.commands import (
    Command,
    Finish,
    Publish,
    ReturnCollected,
    ScheduleTimer,
    StartWorker,
)
from anyflow._core.reducer import TickRejected, reduce
from anyflow._core.state import (
    RUN_TIMEOUT_TIMER,
    Broken,
    Cancelled,
    Completed,
    Delivery,
    Failed,
    Lane,
    RunSpec,
    RunState,
    RunStatus,
    StepSpec,
    TimedOut,
    Worker,
)
from anyflow._core.ticks import (
    CancelRequested,
    EventCollected,
    EventSent,
    RunResumed,
    RunStarted,
    StepCompleted,
    StepFailed,
    Tick,
    TimerFired,
)

if TYPE_CHECKING:
    from collections.abc import Iterable


class A:
    pass


class SubA(A):
    pass


class B:
    pass


class C:
    pass


class P:
    """Published to the stream; no step accepts it."""


class Q:
    """Published to the stream and accepted by step ``q``."""


class S:
    """The stop type."""


class Orphan:
    """No step accepts it, and it is neither a stop nor a publish type."""


def make_spec(*steps: StepSpec, timeout: float | None = None) -> RunSpec:
    return RunSpec(
        steps={s.name: s for s in steps},
        stop_types=(S,),
        publish_types=(P, Q),
        timeout=timeout,
    )


def default_spec(timeout: float | None = None) -> RunSpec:
    return make_spec(
        StepSpec("a", (A,), 1),
        StepSpec("b", (B,), 2),
        StepSpec("c", (A, C), 3),
        StepSpec("q", (Q,), 1),
        timeout=timeout,
    )


def feed(state: RunState, ticks: Iterable[Tick]) -> tuple[RunState, list[Command]]:
    """Reduce ``ticks`` in order; return the last state and every command."""
    out: list[Command] = []
    for tick in ticks:
        state, commands = reduce(state, tick)
        out += commands
    return state, out


def started(spec: RunSpec, start_event: object, *ticks: Tick) -> tuple[RunState, list[Command]]:
    return feed(RunState.initial(spec), [RunStarted(start_event, 0.0), *ticks])


# Start: rule 2.


def test_initial_state() -> None:
    spec = default_spec()
    state = RunState.initial(spec)
    assert state.status is RunStatus.NOT_STARTED
    assert not state.status.finished
    assert set(state.lanes) == {"a", "b", "c", "q"}
    assert all(lane == Lane() for lane in state.lanes.values())
    assert state.workers == {}
    assert state.outcome is None


def test_start_event_is_delivered_to_every_accepting_step() -> None:
    ev = A()
    state, commands = reduce(RunState.initial(default_spec()), RunStarted(ev, 5.0))
    delivery = Delivery(0, ev)
    assert commands == [StartWorker(0, "a", delivery), StartWorker(1, "c", delivery)]
    assert state.status is RunStatus.RUNNING
    assert state.workers == {0: Worker("a", delivery), 1: Worker("c", delivery)}
    assert state.lanes["a"].running == 1
    assert state.lanes["c"].running == 1
    assert state.lanes["b"].running == 0
    assert state.next_event_id == 1
    assert state.next_worker_id == 2
    assert state.deadline is None


def test_subclass_is_routed_to_steps_accepting_its_base() -> None:
    ev = SubA()
    _, commands = reduce(RunState.initial(default_spec()), RunStarted(ev, 0.0))
    assert [c.step for c in commands if isinstance(c, StartWorker)] == ["a", "c"]


def test_start_event_no_step_accepts_breaks_the_run() -> None:
    state, commands = reduce(RunState.initial(default_spec()), RunStarted(Orphan(), 0.0))
    outcome = Broken(None, "no step accepts the start event Orphan")
    assert commands == [Finish(outcome)]
    assert state.status is RunStatus.FAILED
    assert state.outcome == outcome


def test_event_sent_is_delivered_to_every_accepting_step() -> None:
    state, _ = started(default_spec(), B())
    ev = A()
    state, commands = reduce(state, EventSent(ev, external=True))
    delivery = Delivery(1, ev)
    assert commands == [StartWorker(1, "a", delivery), StartWorker(2, "c", delivery)]


def test_event_sent_to_one_step_goes_only_there() -> None:
    state, _ = started(default_spec(), B())
    ev = A()
    state, commands = reduce(state, EventSent(ev, step="c"))
    assert commands == [StartWorker(1, "c", Delivery(1, ev))]
    assert state.lanes["a"] == Lane()


# Queues and num_workers: rule 3.


def test_num_workers_limit_queues_deliveries_in_fifo_order() -> None:
    spec = make_spec(StepSpec("b", (B,), 2))
    events = [B() for _ in range(5)]
    state, commands = started(spec, events[0], *(EventSent(ev) for ev in events[1:]))
    assert commands == [
        StartWorker(0, "b", Delivery(0, events[0])),
        StartWorker(1, "b", Delivery(1, events[1])),
    ]
    assert state.lanes["b"].running == 2
    assert list(state.lanes["b"].queue) == [Delivery(i, events[i]) for i in (2, 3, 4)]

    state, commands = reduce(state, StepCompleted(1))
    assert commands == [StartWorker(2, "b", Delivery(2, events[2]))]
    state, commands = reduce(state, StepCompleted(0))
    assert commands == [StartWorker(3, "b", Delivery(3, events[3]))]
    assert state.lanes["b"].running == 2
    assert list(state.lanes["b"].queue) == [Delivery(4, events[4])]
    state, commands = feed(state, [StepCompleted(2), StepCompleted(3)])
    assert commands == [StartWorker(4, "b", Delivery(4, events[4]))]
    state, commands = reduce(state, StepCompleted(4))
    assert commands == []
    assert state.lanes["b"] == Lane()
    assert state.workers == {}
    assert state.status is RunStatus.RUNNING


def test_output_to_a_busy_step_waits_behind_earlier_deliveries() -> None:
    spec = make_spec(StepSpec("a", (A,), 1))
    first, queued, output = A(), A(), A()
    state, _ = started(spec, first, EventSent(queued))
    state, commands = reduce(state, StepCompleted(0, output))
    # The slot worker 0 freed goes to the delivery that was waiting.
    assert commands == [StartWorker(1, "a", Delivery(1, queued))]
    assert list(state.lanes["a"].queue) == [Delivery(2, output)]


def test_output_to_a_free_step_starts_at_once() -> None:
    spec = make_spec(StepSpec("a", (A,), 1), StepSpec("b", (B,), 1))
    out = B()
    state, commands = started(spec, A(), StepCompleted(0, out))
    assert commands[-1] == StartWorker(1, "b", Delivery(1, out))
    assert state.lanes["a"].running == 0
    assert state.lanes["b"].running == 1


def test_step_completed_with_none_releases_the_worker() -> None:
    state, _ = started(default_spec(), B())
    state, commands = reduce(state, StepCompleted(0, None))
    assert commands == []
    assert state.workers == {}
    assert state.lanes["b"].running == 0
    assert state.status is RunStatus.RUNNING


# Ending the run: rule 4.


def test_stop_output_completes_the_run() -> None:
    stop = S()
    state, commands = started(default_spec(), A(), StepCompleted(1, stop))
    assert commands[-1:] == [Finish(Completed(stop))]
    assert state.status is RunStatus.COMPLETED
    assert state.status.finished
    assert state.outcome == Completed(stop)


FOLLOW_UPS: list[Tick] = [
    RunStarted(A(), 1.0),
    EventSent(A()),
    EventSent(Orphan()),
    StepCompleted(0, A()),
    StepCompleted(99),
    StepFailed(0, ValueError("x"), 1.0, 2.0),
    EventCollected(0, "buf", C(), [C]),
    CancelRequested(),
    TimerFired(RUN_TIMEOUT_TIMER, 1e9),
    TimerFired("retry-0", 1e9),
]


@pytest.mark.parametrize("tick", FOLLOW_UPS, ids=lambda t: type(t).__name__)
def test_a_finished_run_ignores_every_later_tick(tick: Tick) -> None:
    state, _ = started(default_spec(timeout=5), A(), StepCompleted(1, S()))
    assert state.status is RunStatus.COMPLETED
    after, commands = reduce(state, tick)
    assert after is state
    assert commands == []


@pytest.mark.parametrize(
    "ending",
    [CancelRequested(), StepFailed(0, ValueError("x")), StepCompleted(0, Orphan())],
    ids=lambda t: type(t).__name__,
)
def test_every_ending_is_final(ending: Tick) -> None:
    state, _ = started(default_spec(), A(), ending)
    assert state.status.finished
    for tick in FOLLOW_UPS:
        after, commands = reduce(state, tick)
        assert after is state
        assert commands == []


def test_output_no_step_accepts_breaks_the_run_naming_the_step() -> None:
    state, commands = started(default_spec(), A(), StepCompleted(1, Orphan()))
    assert state.status is RunStatus.FAILED
    assert isinstance(state.outcome, Broken)
    assert state.outcome.step == "c"
    assert state.outcome.message == (
        "step 'c' returned Orphan, which no step accepts; add a step that accepts it, "
        "or fix the step's return annotation"
    )
    assert commands[-1] == Finish(state.outcome)


def test_publish_type_output_is_published() -> None:
    ev = P()
    state, commands = started(default_spec(), A(), StepCompleted(0, ev))
    assert commands[-1:] == [Publish(ev)]
    assert state.status is RunStatus.RUNNING
    assert state.lanes["a"].running == 0
    assert state.next_event_id == 1  # published only, not delivered


def test_publish_type_output_is_also_routed_if_accepted() -> None:
    ev = Q()
    state, commands = started(default_spec(), A(), StepCompleted(0, ev))
    assert commands[-2:] == [Publish(ev), StartWorker(2, "q", Delivery(1, ev))]
    assert state.status is RunStatus.RUNNING


def test_cancel_requested_cancels() -> None:
    state, _ = started(default_spec(), A())
    state, commands = reduce(state, CancelRequested())
    assert commands == [Finish(Cancelled())]
    assert state.status is RunStatus.CANCELLED
    assert state.outcome == Cancelled()


# Failures and retries.


def test_step_failed_without_retry_fails_the_run() -> None:
    error = ValueError("boom")
    state, commands = started(default_spec(), A(), StepFailed(1, error, None, 3.0))
    outcome = Failed("c", error, 1)
    assert commands[-1] == Finish(outcome)
    assert state.status is RunStatus.FAILED
    assert state.outcome == outcome


def test_retry_schedules_a_timer_and_frees_the_slot() -> None:
    spec = make_spec(StepSpec("a", (A,), 1))
    first, second = A(), A()
    error = ValueError("boom")
    state, _ = started(spec, first, EventSent(second))
    state, commands = reduce(state, StepFailed(0, error, retry_delay=2.5, now=10.0))
    assert commands == [
        ScheduleTimer("retry-0", 12.5),
        StartWorker(1, "a", Delivery(1, second)),
    ]
    retried = Delivery(0, first, 2, error, 10.0, last_failed_at=10.0)
    assert state.retries == {"retry-0": Worker("a", retried, 12.5)}
    assert state.lanes["a"].running == 1
    assert state.status is RunStatus.RUNNING


def test_retry_goes_to_the_front_of_the_queue_with_its_history() -> None:
    spec = make_spec(StepSpec("a", (A,), 1))
    first, second, third = A(), A(), A()
    error, error2 = ValueError("boom"), KeyError("again")
    state, _ = started(
        spec,
        first,
        EventSent(second),
        EventSent(third),
        # The attempt started at 9; worker 1 starts ``second``.
        StepFailed(0, error, retry_delay=1.0, now=10.0, started_at=9.0),
    )
    state, commands = reduce(state, TimerFired("retry-0", 11.0))
    # No free slot: the retry waits, but ahead of ``third``.
    assert commands == []
    assert state.retries == {}
    retried = Delivery(
        0,
        first,
        attempt=2,
        last_error=error,
        first_failed_at=10.0,
        first_started_at=9.0,
        last_failed_at=10.0,
    )
    assert list(state.lanes["a"].queue) == [retried, Delivery(2, third)]

    state, commands = reduce(state, StepCompleted(1))
    assert commands == [StartWorker(2, "a", retried)]

    # A second failure keeps the times of the first start and the first
    # failure (what it says of its own start is not needed), and its own time.
    state, commands = reduce(
        state, StepFailed(2, error2, retry_delay=4.0, now=20.0, started_at=11.0)
    )
    assert commands == [ScheduleTimer("retry-2", 24.0), StartWorker(3, "a", Delivery(2, third))]
    again = Delivery(0, first, 3, error2, 10.0, first_started_at=9.0, last_failed_at=20.0)
    assert state.retries == {"retry-2": Worker("a", again, 24.0)}


def test_retry_timer_with_a_free_slot_starts_at_once() -> None:
    spec = make_spec(StepSpec("a", (A,), 1))
    ev = A()
    error = ValueError("boom")
    state, _ = started(spec, ev, StepFailed(0, error, retry_delay=1.0, now=1.0))
    assert state.lanes["a"].running == 0
    state, commands = reduce(state, TimerFired("retry-0", 2.0))
    assert commands == [StartWorker(1, "a", Delivery(0, ev, 2, error, 1.0, last_failed_at=1.0))]
    assert state.lanes["a"].queue.size == 0


def test_failing_after_retries_reports_the_attempts() -> None:
    spec = make_spec(StepSpec("a", (A,), 1))
    error = ValueError("last")
    state, commands = started(
        spec,
        A(),
        StepFailed(0, ValueError("first"), retry_delay=1.0, now=0.0),
        TimerFired("retry-0", 1.0),
        StepFailed(1, ValueError("second"), retry_delay=1.0, now=1.0),
        TimerFired("retry-1", 2.0),
        StepFailed(2, error, retry_delay=None, now=2.0),
    )
    assert state.outcome == Failed("a", error, 3)
    assert commands[-1] == Finish(Failed("a", error, 3))


def test_unknown_retry_timer_is_ignored() -> None:
    state, _ = started(default_spec(), A())
    after, commands = reduce(state, TimerFired("retry-42", 5.0))
    assert after is state
    assert commands == []


# Run timeout: rule 5.


def test_run_started_schedules_the_run_timeout() -> None:
    ev = A()
    state, commands = reduce(RunState.initial(default_spec(timeout=10.0)), RunStarted(ev, 100.0))
    assert commands[0] == ScheduleTimer(RUN_TIMEOUT_TIMER, 110.0)
    assert commands[1:] == [
        StartWorker(0, "a", Delivery(0, ev)),
        StartWorker(1, "c", Delivery(0, ev)),
    ]
    assert state.deadline == 110.0


def test_run_timeout_timer_firing_early_reschedules() -> None:
    state, _ = feed(RunState.initial(default_spec(timeout=10.0)), [RunStarted(A(), 100.0)])
    after, commands = reduce(state, TimerFired(RUN_TIMEOUT_TIMER, 109.5))
    assert commands == [ScheduleTimer(RUN_TIMEOUT_TIMER, 110.0)]
    assert after.status is RunStatus.RUNNING
    assert after == state


@pytest.mark.parametrize("now", [110.0, 250.0])
def test_run_timeout_at_or_after_the_deadline_times_out(now: float) -> None:
    state, _ = feed(
        RunState.initial(default_spec(timeout=10.0)),
        [RunStarted(A(), 100.0), EventSent(B()), StepCompleted(0)],
    )
    state, commands = reduce(state, TimerFired(RUN_TIMEOUT_TIMER, now))
    outcome = TimedOut(10.0, ("b", "c"))
    assert commands == [Finish(outcome)]
    assert state.status is RunStatus.TIMED_OUT
    assert state.outcome == outcome


def test_run_timeout_names_steps_waiting_for_a_retry() -> None:
    state, _ = feed(
        RunState.initial(default_spec(timeout=10.0)),
        [RunStarted(B(), 100.0), StepFailed(0, ValueError("x"), retry_delay=50.0, now=101.0)],
    )
    assert state.workers == {}
    state, commands = reduce(state, TimerFired(RUN_TIMEOUT_TIMER, 110.0))
    assert commands == [Finish(TimedOut(10.0, ("b",)))]


def test_run_timeout_timer_without_a_timeout_is_ignored() -> None:
    state, _ = started(default_spec(), A())
    after, commands = reduce(state, TimerFired(RUN_TIMEOUT_TIMER, 1e9))
    assert after is state
    assert commands == []


# collect_events.


def collecting(*ticks: Tick) -> tuple[RunState, list[Command]]:
    """A run whose worker 1 executes step ``c``, worker 2 step ``c`` too."""
    return started(default_spec(), A(), EventSent(C()), *ticks)


def returned(commands: list[Command]) -> list[tuple[object, ...] | None]:
    return [c.events for c in commands if isinstance(c, ReturnCollected)]


def test_collect_returns_none_until_complete_then_in_expected_order() -> None:
    a, c = A(), C()
    state, _ = collecting()
    state, commands = reduce(state, EventCollected(1, "buf", a, [C, A]))
    assert commands == [ReturnCollected(1, None)]
    assert list(state.collections) == [("c", "buf")]
    state, commands = reduce(state, EventCollected(1, "buf", c, [C, A]))
    assert commands == [ReturnCollected(1, (c, a))]
    assert state.collections == {}


def test_a_retried_delivery_does_not_collect_its_event_twice() -> None:
    a, c = A(), C()
    state, _ = collecting(EventCollected(2, "buf", c, [C, A]))
    state, commands = reduce(state, StepFailed(2, ValueError(), retry_delay=0.0, now=1.0))
    [retry] = [cmd for cmd in commands if isinstance(cmd, ScheduleTimer)]
    state, commands = reduce(state, TimerFired(retry.timer_id, 1.0))
    [again] = [cmd for cmd in commands if isinstance(cmd, StartWorker)]
    state, commands = reduce(state, EventCollected(again.worker_id, "buf", c, [C, A]))
    assert returned(commands) == [None]
    assert state.collections[("c", "buf")].total == 1
    state, commands = reduce(state, EventCollected(1, "buf", a, [C, A]))
    assert returned(commands) == [(c, a)]
    assert state.collections == {}


def test_a_delivery_re_run_after_a_crash_gets_the_same_collect_answer() -> None:
    a, c = A(), C()
    # Worker 2 put its event in the buffer, then the process died.
    state, _ = collecting(EventCollected(2, "buf", c, [C, A]))
    state, commands = reduce(state, RunResumed(2.0, recovered=True))
    rerun = {
        (cmd.step, cmd.delivery.event_id): cmd.worker_id
        for cmd in commands
        if isinstance(cmd, StartWorker)
    }
    state, commands = reduce(state, EventCollected(rerun["c", 1], "buf", c, [C, A]))
    assert returned(commands) == [None]
    assert state.collections[("c", "buf")].total == 1
    state, commands = reduce(state, EventCollected(rerun["c", 0], "buf", a, [C, A]))
    assert returned(commands) == [(c, a)]
    assert state.collections == {}


def test_collect_matches_exact_types_only() -> None:
    sub, a = SubA(), A()
    state, commands = collecting(
        EventCollected(1, "buf", sub, [A]),
        EventCollected(1, "buf", a, [A]),
    )
    assert returned(commands) == [None, (a,)]
    # The subclass instance stays buffered, and completes a collection of SubA.
    state, commands = reduce(state, EventCollected(1, "buf", C(), [SubA]))
    assert returned(commands) == [(sub,)]


def test_collect_takes_the_oldest_first_and_keeps_extras() -> None:
    a1, a2, a3 = A(), A(), A()
    c1, c2 = C(), C()
    state, commands = collecting(
        EventCollected(1, "buf", a1, [A, C]),
        EventCollected(1, "buf", a2, [A, C]),
        EventCollected(1, "buf", a3, [A, C]),
        EventCollected(1, "buf", c1, [A, C]),
    )
    assert returned(commands) == [None, None, None, (a1, c1)]
    assert state.collections[("c", "buf")].items() == [a2, a3]
    state, commands = reduce(state, EventCollected(2, "buf", c2, [A, C]))
    assert returned(commands) == [(a2, c2)]
    assert state.collections[("c", "buf")].items() == [a3]


def test_collect_repeated_types_in_expected() -> None:
    a1, c, a2 = A(), C(), A()
    _, commands = collecting(
        EventCollected(1, "buf", a1, [A, C, A]),
        EventCollected(1, "buf", c, [A, C, A]),
        EventCollected(1, "buf", a2, [A, C, A]),
    )
    assert returned(commands) == [None, None, (a1, c, a2)]


def test_collect_buffers_are_independent_by_id_and_step() -> None:
    a1, a2, c1 = A(), A(), C()
    state, commands = collecting(
        EventCollected(1, "one", a1, [A, C]),
        EventCollected(1, "two", a2, [A, C]),
        EventCollected(0, "one", c1, [A, C]),  # worker 0 runs step "a"
    )
    assert returned(commands) == [None, None, None]
    assert {key: buf.items() for key, buf in state.collections.items()} == {
        ("c", "one"): [a1],
        ("c", "two"): [a2],
        ("a", "one"): [c1],
    }
    c2 = C()
    state, commands = reduce(state, EventCollected(1, "two", c2, [A, C]))
    assert returned(commands) == [(a2, c2)]
    assert {key: buf.items() for key, buf in state.collections.items()} == {
        ("c", "one"): [a1],
        ("a", "one"): [c1],
    }


def test_collect_buffer_is_shared_by_the_workers_of_a_step() -> None:
    a, c = A(), C()
    _, commands = collecting(
        EventCollected(1, "buf", a, [A, C]),
        EventCollected(2, "buf", c, [A, C]),
    )
    assert commands[-2:] == [ReturnCollected(1, None), ReturnCollected(2, (a, c))]


def test_collect_nothing_returns_an_empty_tuple() -> None:
    state, _ = collecting()
    after, commands = reduce(state, EventCollected(1, "buf", A(), []))
    assert commands == [ReturnCollected(1, ())]
    assert after == state
    assert after.collections == {}


# Rejected ticks: rule 4, "illegal transitions raise an error and nothing happens".


def _independent_copy(state: RunState) -> RunState:
    """An equal state that shares no mutable mapping with ``state``."""
    return attrs.evolve(
        state,
        lanes=dict(state.lanes),
        workers=dict(state.workers),
        retries=dict(state.retries),
        collections=dict(state.collections),
    )


def _started_for_rejection() -> list[Tick]:
    return [
        RunStarted(A(), 0.0),
        EventSent(A()),  # "a" has one worker: this waits in its queue
        StepFailed(1, ValueError("x"), 1.0, 0.0),  # a pending retry of "c"
        EventCollected(2, "buf", A(), [A, C]),  # a buffered collection
    ]


REJECTED = [
    pytest.param(
        [],
        EventSent(A()),
        r"^EventSent before RunStarted: the run has not started$",
        id="event-before-start",
    ),
    pytest.param(
        [],
        StepCompleted(0),
        r"^StepCompleted before RunStarted: the run has not started$",
        id="completed-before-start",
    ),
    pytest.param(
        [],
        CancelRequested(),
        r"^CancelRequested before RunStarted: the run has not started$",
        id="cancel-before-start",
    ),
    pytest.param(
        [],
        TimerFired(RUN_TIMEOUT_TIMER, 1.0),
        r"^TimerFired before RunStarted: the run has not started$",
        id="timer-before-start",
    ),
    pytest.param(
        _started_for_rejection(),
        RunStarted(A(), 1.0),
        r"^RunStarted twice: a run starts once$",
        id="started-twice",
    ),
    pytest.param(
        _started_for_rejection(),
        StepCompleted(42, A()),
        r"^no worker 42 is executing in this run$",
        id="completed-unknown-worker",
    ),
    pytest.param(
        _started_for_rejection(),
        StepCompleted(1),
        r"^no worker 1 is executing in this run$",
        id="completed-finished-worker",
    ),
    pytest.param(
        _started_for_rejection(),
        StepFailed(42, ValueError("x"), 1.0, 0.0),
        r"^no worker 42 is executing in this run$",
        id="failed-unknown-worker",
    ),
    pytest.param(
        _started_for_rejection(),
        EventCollected(42, "buf", C(), [A, C]),
        r"^no worker 42 is executing in this run$",
        id="collected-unknown-worker",
    ),
    pytest.param(
        _started_for_rejection(),
        EventSent(A(), step="b"),
        r"^step 'b' does not accept A$",
        id="sent-to-step-not-accepting",
    ),
    pytest.param(
        _started_for_rejection(),
        EventSent(A(), step="nope"),
        r"^no step 'nope' in this workflow$",
        id="sent-to-unknown-step",
    ),
    pytest.param(
        _started_for_rejection(),
        EventSent(Orphan(), external=True),
        r"^no step accepts Orphan$",
        id="sent-type-nobody-accepts",
    ),
]


@pytest.mark.parametrize(("before", "tick", "message"), REJECTED)
def test_rejected_tick_raises_and_changes_nothing(
    before: list[Tick], tick: Tick, message: str
) -> None:
    state, _ = feed(RunState.initial(default_spec(timeout=30.0)), before)
    if before:
        # The fixture really has a queue, a retry and a collection to disturb.
        assert state.lanes["a"].queue
        assert state.retries
        assert state.collections
    expected = _independent_copy(state)
    with pytest.raises(TickRejected, match=message):
        reduce(state, tick)
    assert state == expected
    # And the run goes on as if the tick had never come.
    replayed, _ = feed(RunState.initial(state.spec), before)
    assert replayed == state


# State equality.


def test_states_with_the_same_deliveries_compare_equal() -> None:
    """Equality of states is what replay and round-trip tests rely on.

    Both runs end with worker 1 executing ``e1`` and ``e2`` waiting in step
    ``a``'s queue, with the same counters: only the order in which ``e2``
    arrived and worker 0 finished differs, and nothing in the state can tell.
    """
    spec = make_spec(StepSpec("a", (A,), 1))
    e0, e1, e2 = A(), A(), A()
    x, x_commands = started(spec, e0, EventSent(e1), EventSent(e2), StepCompleted(0))
    y, y_commands = started(spec, e0, EventSent(e1), StepCompleted(0), EventSent(e2))
    assert x_commands == y_commands
    assert x.workers == y.workers == {1: Worker("a", Delivery(1, e1))}
    assert list(x.lanes["a"].queue) == list(y.lanes["a"].queue) == [Delivery(2, e2)]
    assert (x.next_event_id, x.next_worker_id) == (y.next_event_id, y.next_worker_id)
    assert x == y
