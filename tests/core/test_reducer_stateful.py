"""The reducer under random interleavings of ticks (``hypothesis.stateful``).

The machine drives ``reduce`` with the ticks a real run produces (start, events
from outside, steps completing, failing and collecting, timers, cancel) in any
order, keeps a model of what should have happened, and checks the rules of
``anyflow/_core/reducer.py`` as invariants after every step:

1. no delivery is lost or duplicated: every (event, step) delivery accepted is
   in exactly one place: a step's queue, a worker, a pending retry, or done;
2. no delivery is misrouted: its step accepts its event's type;
3. a step never runs more than ``num_workers`` deliveries, ``Lane.running``
   counts them, and a delivery waits only while its step is full;
4. a finished run stays finished: every later tick returns the very same state
   and no commands;
5. ``StartWorker`` starts only a delivery that was queued (from the front) or is
   new, under a fresh worker id;
6. the reducer is deterministic: replaying the recorded ticks reproduces the
   same commands and an equal final state (checked in ``teardown``).

Worker ids flow through the ``in_flight`` bundle: a rule that starts workers
adds their ids, completing or failing a worker consumes its id.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import TYPE_CHECKING, Any

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

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
    RunStarted,
    StepCompleted,
    StepFailed,
    Tick,
    TimerFired,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

_serials = itertools.count()


class Ev:
    """An opaque event with a serial number: equal-looking events stay distinct."""

    def __init__(self) -> None:
        self.serial = next(_serials)

    def __repr__(self) -> str:
        return f"{type(self).__name__}#{self.serial}"


class A(Ev):
    pass


class B(Ev):
    pass


class C(Ev):
    pass


class S(Ev):
    """The stop type."""


class P(Ev):
    """Published to the caller's stream; no step accepts it."""


class Orphan(Ev):
    """No step accepts it, and it is not published: a step returning it breaks the run."""


STEPS = {
    "a": StepSpec("a", (A,), num_workers=1),
    "b": StepSpec("b", (B,), num_workers=2),
    "c": StepSpec("c", (A, C), num_workers=3),
}
ROUTES: dict[type, tuple[str, ...]] = {A: ("a", "c"), B: ("b",), C: ("c",)}
PUBLISHED = (C, P)
"""C is published and routed, P only published."""
"""Where each routable type goes, written out by hand rather than computed."""
TIMEOUT = 100.0

event_types = st.sampled_from([A, B, C])
outputs = st.sampled_from([None, A, B, C, P])
retry_delays = st.sampled_from([0.5, 2.0])
elapsed = st.sampled_from([0.0, 1.0, 3.0])

Pair = tuple[int, str]
"""A delivery, as (event id, step name)."""


def model_take(
    buffered: list[Any], expected: Sequence[type]
) -> tuple[tuple[Any, ...] | None, list[Any]]:
    """``collect_events`` as the docs describe it: one event of each expected type
    (exact type, oldest first), in ``expected`` order, or None if one is missing."""
    remaining = list(buffered)
    taken = []
    for wanted in expected:
        for index, event in enumerate(remaining):
            if type(event) is wanted:
                taken.append(remaining.pop(index))
                break
        else:
            return None, list(buffered)
    return tuple(taken), remaining


def independent_copy(state: RunState) -> RunState:
    """An equal state that shares no mapping with ``state``."""
    return attrs.evolve(
        state,
        lanes=dict(state.lanes),
        workers=dict(state.workers),
        retries=dict(state.retries),
        collections=dict(state.collections),
    )


def all_deliveries(state: RunState) -> list[tuple[str, Delivery]]:
    """Every delivery in the state, with its step: queued, executing, or waiting to retry."""
    found = [(step, d) for step, lane in state.lanes.items() for d in lane.queue]
    found += [(w.step, w.delivery) for w in state.workers.values()]
    found += [(w.step, w.delivery) for w in state.retries.values()]
    return found


def may_end(machine: ReducerMachine) -> bool:
    """Whether the rules that end the run are enabled yet (see ``start``)."""
    return len(machine.ticks) >= machine.patience


class ReducerMachine(RuleBasedStateMachine):
    in_flight = Bundle("in_flight")

    def __init__(self) -> None:
        super().__init__()
        self.spec = RunSpec(steps=STEPS, stop_types=(S,), publish_types=PUBLISHED, timeout=TIMEOUT)
        self.state = RunState.initial(self.spec)
        self.ticks: list[Tick] = []
        self.produced: list[list[Command]] = []
        self.now = 0.0
        self.accepted: dict[Pair, Any] = {}
        """Every delivery the reducer should have made, with its event."""
        self.done: set[Pair] = set()
        """Deliveries whose step completed or failed for good."""
        self.ever_started: set[int] = set()
        self.pending_timers: dict[str, float] = {}
        """Retry timers scheduled and not fired yet, with their deadlines."""
        self.fired_timers: set[str] = set()
        self.buffers: dict[tuple[str, str], list[Any]] = {}
        """The model of ``RunState.collections``."""
        self.outcome: Any = None
        self.patience = 0

    # Helpers.

    @property
    def running(self) -> bool:
        return self.state.status is RunStatus.RUNNING

    def apply(
        self,
        tick: Tick,
        new_event: Any = None,
        new_steps: tuple[str, ...] = (),
        retry: Worker | None = None,
    ) -> tuple[list[Command], list[int]]:
        """Reduce ``tick``; check the rules about commands; return them and new worker ids.

        ``new_event`` is the event the tick should deliver to ``new_steps``;
        ``retry`` the retry whose timer the tick fires.
        """
        before = self.state
        after, commands = reduce(before, tick)
        self.ticks.append(tick)
        self.produced.append(commands)
        if before.status.finished:
            # Rule 4: a finished run ignores everything.
            assert after is before
            assert commands == []
            return commands, []
        self.state = after

        new_delivery = None
        if new_event is not None:
            event_id = before.next_event_id
            new_delivery = Delivery(event_id, new_event)
            for step in new_steps:
                assert (event_id, step) not in self.accepted
                self.accepted[event_id, step] = new_event
            assert after.next_event_id == event_id + 1
        else:
            assert after.next_event_id == before.next_event_id

        # Rule 5: fresh, consecutive worker ids ...
        started = [c for c in commands if isinstance(c, StartWorker)]
        ids = [c.worker_id for c in started]
        assert ids == list(range(before.next_worker_id, before.next_worker_id + len(ids)))
        assert after.next_worker_id == before.next_worker_id + len(ids)
        assert not self.ever_started & set(ids)
        self.ever_started.update(ids)
        for command in started:
            assert after.workers[command.worker_id] == Worker(command.step, command.delivery)
        # ... for deliveries that were queued (taken from the front) or are new.
        for step in STEPS:
            candidates = list(before.lanes[step].queue)
            if retry is not None and retry.step == step:
                candidates.insert(0, retry.delivery)
            if new_delivery is not None and step in new_steps:
                candidates.append(new_delivery)
            started_here = [c.delivery for c in started if c.step == step]
            assert started_here == candidates[: len(started_here)], step
            assert list(after.lanes[step].queue) == candidates[len(started_here) :], step

        finishes = [c for c in commands if isinstance(c, Finish)]
        if after.status.finished:
            assert after.outcome is not None
            assert finishes == [Finish(after.outcome)]
            assert commands[-1] is finishes[0]
            self.outcome = after.outcome
        else:
            assert finishes == []
            assert after.outcome is None

        for timer in commands:
            if isinstance(timer, ScheduleTimer) and timer.timer_id != RUN_TIMEOUT_TIMER:
                assert timer.timer_id not in self.pending_timers
                assert timer.timer_id not in self.fired_timers
                self.pending_timers[timer.timer_id] = timer.deadline
        return commands, ids

    # Rules.

    @initialize(target=in_flight, kind=event_types, patience=st.integers(0, 40))
    def start(self, kind: type, patience: int) -> Any:
        """Start the run; the rules that end it wait for ``patience`` ticks.

        Rules are picked uniformly, and four of them end the run: without
        patience most runs would end before their queues ever filled up.
        """
        self.patience = patience
        event = kind()
        commands, ids = self.apply(RunStarted(event, 0.0), event, ROUTES[kind])
        assert commands[0] == ScheduleTimer(RUN_TIMEOUT_TIMER, TIMEOUT)
        assert self.state.status is RunStatus.RUNNING
        assert self.state.deadline == TIMEOUT
        return multiple(*ids)

    @rule(
        target=in_flight,
        kinds=st.lists(event_types, min_size=1, max_size=3),
        external=st.booleans(),
        data=st.data(),
    )
    def send(self, kinds: list[type], external: bool, data: st.DataObject) -> Any:
        """Send a few events, each to every step that accepts it or to one of them."""
        ids: list[int] = []
        for kind in kinds:
            event = kind()
            step = data.draw(st.sampled_from((None, *ROUTES[kind])), label=f"step for {event}")
            steps = ROUTES[kind] if step is None else (step,)
            ids += self.apply(EventSent(event, step, external), event, steps)[1]
        return multiple(*ids)

    def _complete(self, worker_id: int, output: type | None) -> Any:
        was_running = self.running
        event = None if output is None else output()
        worker = self.state.workers[worker_id]
        routed = output in ROUTES
        commands, ids = self.apply(
            StepCompleted(worker_id, event),
            event if routed else None,
            ROUTES[output] if routed else (),  # type: ignore[index]
        )
        if was_running:
            self.done.add((worker.delivery.event_id, worker.step))
            published = [c for c in commands if isinstance(c, Publish)]
            assert published == ([Publish(event)] if output in PUBLISHED else [])
            if output is S:
                assert self.state.status is RunStatus.COMPLETED
                assert self.state.outcome == Completed(event)
            elif output is Orphan:
                assert self.state.status is RunStatus.FAILED
                assert isinstance(self.state.outcome, Broken)
                assert self.state.outcome.step == worker.step
            else:
                assert self.running
        return multiple(*ids)

    @rule(target=in_flight, worker_id=consumes(in_flight), output=outputs)
    def complete(self, worker_id: int, output: type | None) -> Any:
        return self._complete(worker_id, output)

    @precondition(may_end)
    @rule(target=in_flight, worker_id=consumes(in_flight), output=st.sampled_from([S, Orphan]))
    def complete_and_end(self, worker_id: int, output: type) -> Any:
        """Return the stop event (success), or one no step accepts (broken run)."""
        return self._complete(worker_id, output)

    def _fail(self, worker_id: int, delay: float | None, elapsed: float) -> Any:
        was_running = self.running
        self.now += elapsed
        error = ValueError(f"failure at tick {len(self.ticks)}")
        worker = self.state.workers[worker_id]
        commands, ids = self.apply(StepFailed(worker_id, error, delay, self.now))
        if not was_running:
            return multiple()
        delivery = worker.delivery
        if delay is None:
            self.done.add((delivery.event_id, worker.step))
            assert self.state.status is RunStatus.FAILED
            assert self.state.outcome == Failed(worker.step, error, delivery.attempt)
        else:
            timer_id = f"retry-{worker_id}"
            assert commands[0] == ScheduleTimer(timer_id, self.now + delay)
            first = self.now if delivery.first_failed_at is None else delivery.first_failed_at
            assert self.state.retries[timer_id] == Worker(
                worker.step,
                Delivery(delivery.event_id, delivery.event, delivery.attempt + 1, error, first),
            )
        return multiple(*ids)

    @rule(target=in_flight, worker_id=consumes(in_flight), delay=retry_delays, elapsed=elapsed)
    def fail_and_retry(self, worker_id: int, delay: float, elapsed: float) -> Any:
        return self._fail(worker_id, delay, elapsed)

    @precondition(may_end)
    @rule(target=in_flight, worker_id=consumes(in_flight), elapsed=elapsed)
    def fail_for_good(self, worker_id: int, elapsed: float) -> Any:
        return self._fail(worker_id, None, elapsed)

    @precondition(lambda self: bool(self.pending_timers or self.fired_timers))
    @rule(target=in_flight, data=st.data())
    def fire_retry_timer(self, data: st.DataObject) -> Any:
        timer_id = data.draw(
            st.sampled_from(sorted(self.pending_timers.keys() | self.fired_timers)), label="timer"
        )
        before = self.state
        was_running = self.running
        pending = timer_id in self.pending_timers
        if pending:
            self.now = max(self.now, self.pending_timers.pop(timer_id))
            self.fired_timers.add(timer_id)
        retry = before.retries.get(timer_id)
        if was_running:
            assert (retry is not None) == pending
        commands, ids = self.apply(TimerFired(timer_id, self.now), retry=retry)
        if was_running:
            assert timer_id not in self.state.retries
            if not pending:  # fired twice: nothing happens
                assert self.state is before
                assert commands == []
        return multiple(*ids)

    @rule(now=st.sampled_from([0.0, 50.0, TIMEOUT - 0.5]))
    def fire_run_timeout_early(self, now: float) -> None:
        before = self.state
        was_running = self.running
        commands, _ = self.apply(TimerFired(RUN_TIMEOUT_TIMER, now))
        if was_running:
            assert commands == [ScheduleTimer(RUN_TIMEOUT_TIMER, TIMEOUT)]
            assert self.state == before
            assert self.running

    @precondition(may_end)
    @rule(now=st.sampled_from([TIMEOUT, TIMEOUT + 50.0]))
    def time_out(self, now: float) -> None:
        before = self.state
        was_running = self.running
        commands, _ = self.apply(TimerFired(RUN_TIMEOUT_TIMER, now))
        if was_running:
            # Steps with unfinished work: executing, or waiting for a retry.
            waiting = [*before.workers.values(), *before.retries.values()]
            outcome = TimedOut(TIMEOUT, tuple(sorted({w.step for w in waiting})))
            assert commands == [Finish(outcome)]
            assert self.state.status is RunStatus.TIMED_OUT
            assert self.state.outcome == outcome

    @precondition(may_end)
    @rule()
    def cancel(self) -> None:
        was_running = self.running
        commands, _ = self.apply(CancelRequested())
        if was_running:
            assert commands == [Finish(Cancelled())]
            assert self.state.status is RunStatus.CANCELLED

    @rule(
        worker_id=in_flight,
        buffer_id=st.sampled_from(["x", "y"]),
        kind=event_types,
        expected=st.lists(event_types, max_size=3),
    )
    def collect(self, worker_id: int, buffer_id: str, kind: type, expected: list[type]) -> None:
        was_running = self.running
        event = kind()
        step = self.state.workers[worker_id].step
        commands, _ = self.apply(EventCollected(worker_id, buffer_id, event, expected))
        if not was_running:
            return
        key = (step, buffer_id)
        if not expected:
            want: tuple[Any, ...] | None = ()
        else:
            want, rest = model_take([*self.buffers.get(key, []), event], expected)
            if rest:
                self.buffers[key] = rest
            else:
                self.buffers.pop(key, None)
        assert commands == [ReturnCollected(worker_id, want)]

    @rule(data=st.data())
    def reject(self, data: st.DataObject) -> None:
        """A tick that breaks the protocol raises and changes nothing."""
        before = self.state
        unknown = data.draw(
            st.sampled_from([*sorted(self.ever_started - before.workers.keys()), 10**6]),
            label="unknown worker",
        )
        candidates: list[Tick] = [
            RunStarted(A(), self.now),
            StepCompleted(unknown, A()),
            StepFailed(unknown, ValueError("unknown"), 1.0, self.now),
            EventCollected(unknown, "x", A(), [A]),
            EventSent(A(), step="b"),
            EventSent(B(), step="a"),
            EventSent(C(), step="a"),
            EventSent(A(), step="nope"),
            EventSent(Orphan(), external=True),
        ]
        tick = data.draw(st.sampled_from(candidates), label="tick")
        if before.status.finished:
            self.apply(tick)  # ignored: apply checks it
            return
        expected = independent_copy(before)
        with pytest.raises(TickRejected):
            reduce(before, tick)
        assert before == expected
        assert self.state is before

    # Invariants.

    @invariant()
    def no_delivery_lost_or_duplicated(self) -> None:
        places: Counter[Pair] = Counter()
        for step, delivery in all_deliveries(self.state):
            pair = (delivery.event_id, step)
            places[pair] += 1
            assert self.accepted.get(pair) is delivery.event, pair
        places.update(self.done)
        duplicated = sorted(pair for pair, n in places.items() if n > 1)
        assert not duplicated, f"deliveries in more than one place: {duplicated}"
        lost = sorted(self.accepted.keys() - places.keys())
        assert not lost, f"deliveries lost: {lost}"
        invented = sorted(places.keys() - self.accepted.keys())
        assert not invented, f"deliveries never made: {invented}"

    @invariant()
    def no_delivery_misrouted(self) -> None:
        for step, delivery in all_deliveries(self.state):
            assert isinstance(delivery.event, STEPS[step].accepts), (step, delivery)
            assert step in ROUTES[type(delivery.event)], (step, delivery)

    @invariant()
    def workers_within_limits(self) -> None:
        per_step = Counter(w.step for w in self.state.workers.values())
        for name, spec in STEPS.items():
            lane = self.state.lanes[name]
            assert per_step[name] <= spec.num_workers, name
            assert lane.running == per_step[name], name
            if self.running and lane.queue:
                # A delivery waits only while its step has no free worker.
                assert lane.running == spec.num_workers, name

    @invariant()
    def finished_stays_finished(self) -> None:
        if self.outcome is not None:
            assert self.state.status.finished
            assert self.state.outcome is self.outcome

    @invariant()
    def retries_match_timers(self) -> None:
        if self.running:
            assert set(self.state.retries) == set(self.pending_timers)

    @invariant()
    def collections_match_model(self) -> None:
        if self.running:
            actual = {key: buf.items() for key, buf in self.state.collections.items()}
            assert actual == self.buffers
            for buf in self.state.collections.values():
                assert buf.total == len(buf.items())

    def teardown(self) -> None:
        # Rule 6: the same ticks give the same commands and an equal state.
        state = RunState.initial(self.spec)
        for tick, commands in zip(self.ticks, self.produced, strict=True):
            state, again = reduce(state, tick)
            assert again == commands, tick
        assert state == self.state


ReducerMachine.TestCase.settings = settings(
    settings.default,
    stateful_step_count=40,
    deadline=None,
)
TestReducerMachine = ReducerMachine.TestCase
