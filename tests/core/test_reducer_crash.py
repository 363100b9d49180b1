"""Crash recovery: a journal folded through ``reduce``, cut anywhere, resumes soundly.

Why these tests: the durable runtime writes every tick to its journal before it
executes the commands the tick caused.  After a crash it rebuilds the run by
folding the journal through ``reduce`` (each tick read back through the tick
codec) and feeds ``RunResumed(now, recovered=True)``.  That is sound only if

1. the fold is exact: replaying any prefix of the journal, raw or read back from
   JSON, gives the very states and commands the live run had, tick for tick
   (``test_a_journal_prefix_replays_exactly``);
2. the resume loses, duplicates and misroutes nothing: every delivery that was
   queued, executing, waiting for an event or waiting for its retry is still
   there, with the same attempt number (a crash is not a failure), the attempts
   that were in flight start again under fresh worker ids, nothing that finished
   before the crash runs again, and the run keeps its deadline, its retries'
   due times and its wait memos (questions asked, answers got, and the
   deadline of a wait the crash cut short, and how many events each attempt
   in flight had sent); the resumed run then goes on within its
   ``num_workers`` limits, runs every delivery exactly once to its end, lets
   no event a step sent enter the run twice (a re-run sends again what its
   attempt sent), and finishes
   (``test_a_crashed_run_resumes_and_runs_to_its_end``);
3. the parts of ``RunResumed`` that differ between a recovered run and a saved
   context resumed elsewhere (``recovered=False``) do what they say (the
   example tests at the end).

The generator is a small random driver over one spec (events in, steps that
complete, fail and retry, fail for good into a catcher, wait for answers,
abandon waits, collect, timers fired on time or early, crashes, and an ending).
Its events are anyflow ``Event`` classes of this module and its errors ``Boom``,
so that every tick survives the journal codec.

A crash may come while a woken wait is queued for a free slot: its worker died
with the process, so its attempt must start over (``Resumption`` back to its
delivery, in its place), never be resumed; the generator steers crashes there.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anyflow._core.commands import (
    CancelTimer,
    Command,
    Finish,
    Publish,
    ResumeWorker,
    ScheduleTimer,
    StartWorker,
)
from anyflow._core.reducer import TickRejected, reduce
from anyflow._core.state import (
    RUN_TIMEOUT_TIMER,
    Cancelled,
    Completed,
    Delivery,
    Failed,
    Resumption,
    RunSpec,
    RunState,
    RunStatus,
    StepSpec,
    TimedOut,
    WaitMemo,
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
    WaitAbandoned,
    WaitStarted,
)
from anyflow.events import Event
from anyflow.serialization import SavedError, decode_tick, encode_tick

if TYPE_CHECKING:
    from collections.abc import Sequence


class Ev(Event):
    """A codec-friendly event; ``n`` tells apart events that look alike."""

    n: int
    topic: str = "x"


class A(Ev):
    pass


class B(Ev):
    pass


class C(Ev):
    """Routed to step ``c`` and published."""


class H(Ev):
    """An answer from outside: no step accepts it, unclaimed ones are kept."""


class Note(Ev):
    """Published only."""


class Stop(Ev):
    pass


class Failure(Ev):
    """What a final failure of step ``b`` hands to its catcher ``k``."""


class Ask(Ev):
    """A question a waiting step publishes."""


class Idle(Ev):
    pass


class Boom(Exception):
    """A step's error.  The journal keeps an error as its type name and message
    and reads it back as a ``SavedError``: a ``Boom`` equals its journal copy,
    so that states rebuilt from the journal compare equal with ``==``."""

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SavedError):
            return other.type_name == "Boom" and str(other) == str(self)
        if isinstance(other, Boom):
            return str(other) == str(self)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))


STEP_TIMEOUT = 5.0
TIMEOUT = 100.0
STEPS = {
    "a": StepSpec("a", (A,), num_workers=1),
    "b": StepSpec("b", (B,), num_workers=2, timeout=STEP_TIMEOUT),
    "c": StepSpec("c", (A, C), num_workers=3),
    "k": StepSpec("k", (Failure,), num_workers=1),
}
ROUTES: dict[type, tuple[str, ...]] = {A: ("a", "c"), B: ("b",), C: ("c",), Failure: ("k",)}
"""Where each routable type goes, written out by hand rather than computed."""
CATCHER, RECOVERIES = "k", 2
SPEC = RunSpec(
    steps=STEPS,
    stop_types=(Stop,),
    publish_types=(C, Note),
    timeout=TIMEOUT,
    catchers={"b": (CATCHER, RECOVERIES)},
    buffer_types=(H,),
    idle_event=Idle(n=0),
)
WAITS: list[tuple[str, tuple[type, ...], tuple[tuple[str, Any], ...]]] = [
    ("any answer", (H,), ()),
    ("answer x", (H,), (("topic", "x"),)),
    ("a B", (B,), ()),
    ("a C about y", (C,), (("topic", "y"),)),
    ("an answer or a C", (H, C), ()),
]
"""(waiter id, event types, requirements): one id always means one kind of wait,
as in a step whose re-run runs the same code again."""

_INDEXES: dict[tuple[int, ...], st.SearchStrategy[tuple[int, ...]]] = {}

Key = tuple[str, int]
"""A delivery, as (step, event id)."""


def pending(state: RunState) -> list[tuple[str, Delivery]]:
    """Every unfinished delivery with its step: queued (as such or as a woken
    wait), executing, waiting for an event, or waiting for its retry."""
    found = [
        (step, item.delivery if type(item) is Resumption else item)
        for step, lane in state.lanes.items()
        for item in lane.queue
    ]
    found += [(w.step, w.delivery) for w in state.workers.values()]
    found += [(w.step, w.delivery) for w in state.waiting.values()]
    found += [(w.step, w.delivery) for w in state.retries.values()]
    return found  # type: ignore[return-value]


def on_a_new_clock(delivery: Delivery) -> Delivery:
    """``delivery`` as a resume on a new clock (not recovered) keeps it: the
    tick times it held mean nothing there."""
    return attrs.evolve(delivery, first_started_at=None, first_failed_at=None, last_failed_at=None)


def attempts(state: RunState) -> Counter[tuple[str, int, int]]:
    """The multiset of (step, event id, attempt) of the unfinished deliveries."""
    return Counter((step, d.event_id, d.attempt) for step, d in pending(state))


def queued_resumptions(state: RunState) -> set[int]:
    return {
        item.worker_id
        for lane in state.lanes.values()
        for item in lane.queue
        if type(item) is Resumption
    }


def through_journal(tick: Tick) -> Tick:
    """``tick`` as the journal gives it back: JSON text, read back."""
    return decode_tick(json.loads(json.dumps(encode_tick(tick))))


def routed_to(tick: Tick) -> tuple[str, ...]:
    """The steps the new event of ``tick`` (if it makes one) must go to."""
    if isinstance(tick, RunStarted):
        return ROUTES[type(tick.start_event)]
    if isinstance(tick, EventSent):
        return (tick.step,) if tick.step is not None else ROUTES[type(tick.event)]
    if isinstance(tick, StepCompleted):
        return ROUTES[type(tick.output)]
    assert isinstance(tick, StepFailed)
    return (CATCHER,)


class Sim:
    """A driver that makes its ticks up: it reduces each one, executes the
    commands in its head (its timers), and checks every tick's result."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data
        self.state = RunState.initial(SPEC)
        self.now = 0.0
        self.journal: list[Tick] = []
        self.records: list[tuple[RunState, list[Command]]] = []
        self.armed: dict[str, float] = {}
        """The driver's timers (a crash loses them all)."""
        self.accepted: set[Key] = set()
        """Every delivery the run made."""
        self.done: Counter[Key] = Counter()
        """Deliveries whose step completed or failed for good (once each)."""
        self.failed: set[tuple[str, int, int]] = set()
        """(step, event id, attempt) of attempts that failed and were retried."""
        self.serial = 0
        self.crash_floor = 0
        """Worker ids below it belonged to a process that crashed."""
        self.sent_by: dict[tuple[str, int, int], list[tuple[Ev, str | None]]] = {}
        """What each attempt, as (step, event id, attempt), sent, in order."""
        self.position: dict[int, int] = {}
        """How many events each live execution (by worker id) has sent."""
        self.entered: Counter[int] = Counter()
        """How many times each event a step sent (by ``n``) entered the run."""

    def draw(self, strategy: st.SearchStrategy[Any], label: str | None = None) -> Any:
        return self.data.draw(strategy, label=label)

    def pick(self, options: Sequence[Any], label: str | None = None) -> Any:
        """One of ``options`` (shrinking towards the first)."""
        (choice,) = self.picks(options, label=label)
        return choice

    def picks(self, *options: Sequence[Any], label: str | None = None) -> tuple[Any, ...]:
        """One of each of ``options``, in one draw: a draw costs more than the
        reducer, so an action draws once or twice."""
        sizes = tuple(len(seq) for seq in options)
        strategy = _INDEXES.get(sizes)
        if strategy is None:
            strategy = _INDEXES[sizes] = st.tuples(*(st.integers(0, n - 1) for n in sizes))
        indexes = self.data.draw(strategy, label=label)
        return tuple(seq[i] for seq, i in zip(options, indexes, strict=True))

    def new(self, kind: type[Ev], topic: str = "x") -> Ev:
        self.serial += 1
        return kind(n=self.serial, topic=topic)

    @property
    def running(self) -> bool:
        return self.state.status is RunStatus.RUNNING

    # Reduce one tick and check it.

    def apply(self, tick: Tick) -> list[Command]:
        before = self.state
        if isinstance(tick, TimerFired):
            self.armed.pop(tick.timer_id, None)
        after, commands = reduce(before, tick)
        self.journal.append(tick)
        self.records.append((after, commands))
        self.state = after
        assert before.status is RunStatus.RUNNING or isinstance(tick, RunStarted)

        if isinstance(tick, StepCompleted | StepFailed):
            worker = before.workers[tick.worker_id]
            key = (worker.step, worker.delivery.event_id)
            if isinstance(tick, StepFailed) and tick.retry_delay is not None:
                self.failed.add((*key, worker.delivery.attempt))
            else:
                self.done[key] += 1

        new = after.next_event_id - before.next_event_id
        assert new in (0, 1)
        if new:
            event_id = before.next_event_id
            steps = routed_to(tick)
            found = {step for step, d in pending(after) if d.event_id == event_id}
            assert found == set(steps), (tick, found)
            self.accepted.update((step, event_id) for step in steps)

        for command in commands:
            if isinstance(command, ScheduleTimer):
                self.armed[command.timer_id] = command.deadline
            elif isinstance(command, CancelTimer):
                self.armed.pop(command.timer_id, None)
            elif isinstance(command, StartWorker):
                # A fresh worker, for a delivery that is not finished and an
                # attempt that has not failed already.
                assert command.worker_id >= before.next_worker_id
                key = (command.step, command.delivery.event_id)
                assert self.done[key] == 0, f"{key} runs again after it finished"
                assert (*key, command.delivery.attempt) not in self.failed
            elif isinstance(command, ResumeWorker):
                # A worker of a process that crashed cannot be resumed.
                assert command.worker_id >= self.crash_floor, command
        finishes = [c for c in commands if isinstance(c, Finish)]
        assert finishes == ([Finish(after.outcome)] if after.status.finished else [])
        self.check()
        return commands

    def check(self) -> None:
        state = self.state
        # No delivery lost or duplicated: each is unfinished or done, once.
        places: Counter[Key] = Counter((step, d.event_id) for step, d in pending(state))
        places.update(self.done)
        twice = sorted(key for key, n in places.items() if n > 1)
        assert not twice, f"deliveries in two places: {twice}"
        assert set(places) == self.accepted
        # None misrouted.
        for step, delivery in pending(state):
            assert step in ROUTES[type(delivery.event)], (step, delivery)
        # Within num_workers, and queued only while the step is full.
        per_step = Counter(w.step for w in state.workers.values())
        for name, spec in STEPS.items():
            lane = state.lanes[name]
            assert lane.running == per_step[name] <= spec.num_workers, name
            if self.running and lane.queue:
                assert lane.running == spec.num_workers, name
        # No event a step sent entered the run twice, re-runs or not.
        twice = sorted(n for n, times in self.entered.items() if times > 1)
        assert not twice, f"step-sent events that entered twice: {twice}"

    # What the driver may do next.

    def run(
        self, ticks: int, may_end: bool = False, may_crash: bool = False, until_woken: bool = False
    ) -> None:
        """Up to ``ticks`` actions; ``until_woken`` stops at the first woken wait
        queued for a slot (a crash there is the tricky case)."""
        for _ in range(ticks):
            if not self.running or (until_woken and queued_resumptions(self.state)):
                return
            self.act(may_end, may_crash)

    def act(self, may_end: bool, may_crash: bool) -> None:
        state = self.state
        options = ["send", "send"]
        if state.workers or state.waiting:
            options += ["step_send", "step_send"]
        if state.workers:
            options += ["complete", "complete", "fail", "wait", "collect"]
        if state.waiting:
            options += ["abandon", "answer"]
        if self.full_waiters():
            # Woken while its step is full: queued to resume (the rare, tricky case).
            options += ["answer", "answer", "answer"]
        if any(timer_id != RUN_TIMEOUT_TIMER for timer_id in self.armed):
            options += ["fire", "fire"]
        if any(d > self.now and not t.startswith("retry-") for t, d in self.armed.items()):
            options += ["fire_early"]
        if may_crash:
            options += ["crash"]
        if may_end:
            options += ["end"]
        getattr(self, self.pick(options))(may_end)

    def full_waiters(self) -> list[int]:
        """Waiting workers whose step has no free slot."""
        lanes = self.state.lanes
        return sorted(
            worker_id
            for worker_id, w in self.state.waiting.items()
            if lanes[w.step].running == STEPS[w.step].num_workers
        )

    def worker(self) -> int:
        return int(self.pick(sorted(self.state.workers), "worker"))

    def send(self, may_end: bool) -> None:
        kind, topic, later, external = self.picks(
            [A, B, C, H, H], ["x", "y"], [0.0, 1.0, 3.0], [False, True]
        )
        targets = tuple(STEPS) if kind is H else ROUTES[kind]
        step = self.pick((None, *targets))
        self.now += later
        self.apply(EventSent(self.new(kind, topic), step, external, self.now))

    def step_send(self, may_end: bool) -> None:
        """A step attempt sends an event (while it waits, from a task of its
        own); an attempt that runs again after a crash sends again, in order,
        what it sent before, then new events."""
        state = self.state
        worker_id = self.pick(sorted([*state.workers, *state.waiting]), "sender")
        sender = state.workers.get(worker_id) or state.waiting[worker_id]
        attempt = (sender.step, sender.delivery.event_id, sender.delivery.attempt)
        sent = self.sent_by.setdefault(attempt, [])
        position = self.position.get(worker_id, 0)
        if position < len(sent):
            event, step = sent[position]
        else:
            kind, topic = self.picks([A, B, C, H], ["x", "y"])
            targets = tuple(STEPS) if kind is H else ROUTES[kind]
            step = self.pick((None, *targets))
            event = self.new(kind, topic)
            sent.append((event, step))
        self.position[worker_id] = position + 1
        self.apply(EventSent(event, step, False, self.now, worker_id))
        after = self.state
        if (
            after.next_event_id != state.next_event_id
            or after.unclaimed != state.unclaimed
            or after.waiting.keys() != state.waiting.keys()
        ):
            self.entered[event.n] += 1
        self.check()
        assert self.entered[event.n] == 1, event  # neither lost nor sent in twice

    def complete(self, may_end: bool) -> None:
        worker_id, kind, topic = self.picks(
            sorted(self.state.workers), [None, A, B, C, Note], ["x", "y"]
        )
        output = None if kind is None else self.new(kind, topic)
        self.apply(StepCompleted(worker_id, output, self.now))

    def fail(self, may_end: bool) -> None:
        worker_id, delay = self.picks(sorted(self.state.workers), [0.5, 2.0, None])
        step = self.state.workers[worker_id].step
        caught = step == "b" and self.state.recoveries.get(CATCHER, 0) < RECOVERIES
        if delay is None and not (caught or may_end):
            delay = 2.0  # a failure that would end the run: not yet
        error = Boom(f"failure #{len(self.journal)}")
        failure = self.new(Failure) if step == "b" else None
        self.apply(StepFailed(worker_id, error, delay, self.now, failure))

    def wait(self, may_end: bool) -> None:
        # Often a worker whose step has work queued: that work takes its slot,
        # so that the wait's end finds the step full.
        lanes = self.state.lanes
        busy = sorted(i for i, w in self.state.workers.items() if lanes[w.step].queue)
        workers = busy if busy and self.pick([False, True]) else sorted(self.state.workers)
        worker_id, wait, ask, timeout = self.picks(workers, WAITS, [None, 0, 1], [None, 1.0, 10.0])
        waiter_id, types, requirements = wait
        question = None if ask is None else Ask(n=ask, topic=waiter_id)
        worker = self.state.workers[worker_id]
        memo = self.state.memos.get((worker.step, worker.delivery.event_id), WaitMemo())
        kept = memo.deadlines.get(waiter_id)
        self.apply(
            WaitStarted(worker_id, waiter_id, types, requirements, question, timeout, self.now)
        )
        waiter = self.state.waiting.get(worker_id)
        if waiter is not None and timeout is not None:
            # A wait that a crash cut short keeps its deadline; others start now.
            assert waiter.deadline == (self.now + timeout if kept is None else kept)

    def collect(self, may_end: bool) -> None:
        kinds = [A, B, C]
        worker_id, kind, buffer_id, size = self.picks(
            sorted(self.state.workers), kinds, ["x", "y"], range(4)
        )
        event = self.new(kind)
        expected = self.picks(*[kinds] * size)
        self.apply(EventCollected(worker_id, buffer_id, event, expected, self.now))

    def abandon(self, may_end: bool) -> None:
        worker_id = self.pick(sorted(self.state.waiting), "waiter")
        self.apply(WaitAbandoned(worker_id, self.now))

    def answer(self, may_end: bool) -> None:
        """Send what a waiting step waits for (an older wait may take it first)."""
        worker_id, to_step, later = self.picks(
            self.full_waiters() or sorted(self.state.waiting), [False, True], [0.0, 1.0]
        )
        waiter = self.state.waiting[worker_id]
        kind = self.pick(waiter.event_types)
        event = self.new(kind, dict(waiter.requirements).get("topic", "y"))
        step = waiter.step if to_step else None
        self.now += later
        self.apply(EventSent(event, step, True, self.now))

    def fire(self, may_end: bool) -> None:
        timers = sorted(t for t in self.armed if t != RUN_TIMEOUT_TIMER)
        timer_id = self.pick(timers, "timer")
        self.now = max(self.now, self.armed[timer_id])
        self.apply(TimerFired(timer_id, self.now))

    def fire_early(self, may_end: bool) -> None:
        # Not a retry timer: the reducer takes one that fires as due (early or not).
        timers = sorted(
            t
            for t, deadline in self.armed.items()
            if deadline > self.now and not t.startswith("retry-")
        )
        timer_id = self.pick(timers, "early timer")
        deadline = self.armed[timer_id]
        before = self.state
        commands = self.apply(TimerFired(timer_id, self.now))
        assert commands == [ScheduleTimer(timer_id, deadline)]
        assert self.state == before

    def end(self, may_end: bool) -> None:
        how = self.pick(["stop", "fail", "cancel", "time out"])
        if how in ("stop", "fail") and not self.state.workers:
            how = "cancel"
        self.end_by(how)

    def end_by(self, how: str) -> None:
        if how == "stop":
            stop = self.new(Stop)
            self.apply(StepCompleted(self.worker(), stop, self.now))
            assert self.state.outcome == Completed(stop)
        elif how == "fail":
            worker_id = self.worker()
            worker = self.state.workers[worker_id]
            error = Boom("for good")
            self.apply(StepFailed(worker_id, error, None, self.now, None))
            assert self.state.outcome == Failed(worker.step, error, worker.delivery.attempt)
        elif how == "cancel":
            self.apply(CancelRequested(self.now))
            assert self.state.outcome == Cancelled()
        else:
            assert self.state.deadline is not None
            self.now = max(self.now, self.state.deadline)
            active = self.state.active_steps()
            self.apply(TimerFired(RUN_TIMEOUT_TIMER, self.now))
            assert self.state.outcome == TimedOut(TIMEOUT, active)
        assert self.state.status.finished

    # The crash.

    def crash(self, may_end: bool) -> None:
        self.crash_now(self.draw(st.booleans(), "recovered"))

    def crash_now(self, recovered: bool) -> list[Command]:
        """The process dies after journaling its last tick; a new one folds the
        journal (read back from JSON) and resumes the run."""
        rebuilt = RunState.initial(SPEC)
        for tick in self.journal:
            rebuilt, _ = reduce(rebuilt, through_journal(tick))
        before = self.state
        # Equal, errors read back as SavedError included (see Boom).
        assert rebuilt == before
        self.crash_floor = before.next_worker_id
        self.armed = {}  # the driver's timers died with it
        self.position = {}  # and its executions
        self.now += self.pick([0.0, 2.0, 30.0], "downtime")
        tick = RunResumed(self.now, recovered)
        resumed = reduce(rebuilt, tick)
        # The simulation goes on with the live state (its errors stay Boom, so
        # that later comparisons stay meaningful); the rebuilt one resumes alike.
        commands = self.apply(tick)
        assert resumed == (self.state, commands)
        check_resume(before, self.state, commands, recovered, self.now, self)
        return commands

    # The end: every delivery runs to its end, then the run ends.

    def drain(self) -> None:
        for _ in range(1000):
            state = self.state
            if not self.running:
                return
            if state.workers:
                self.apply(StepCompleted(min(state.workers), None, self.now))
            elif state.waiting:
                worker_id = min(state.waiting)
                timer_id = f"wait-{worker_id}"
                if timer_id in self.armed:
                    self.now = max(self.now, self.armed[timer_id])
                    self.apply(TimerFired(timer_id, self.now))
                else:
                    self.apply(WaitAbandoned(worker_id, self.now))
            elif state.retries:
                timer_id = min(state.retries)
                # The retry's timer is armed (a resume scheduled it again).
                assert self.armed[timer_id] == state.retries[timer_id].deadline
                self.now = max(self.now, self.armed[timer_id])
                self.apply(TimerFired(timer_id, self.now))
            else:
                assert not pending(state)
                return
        raise AssertionError("the run did not drain")


def check_resume(
    before: RunState,
    after: RunState,
    commands: list[Command],
    recovered: bool,
    now: float,
    sim: Sim,
) -> None:
    """What ``RunResumed(now, recovered)`` must have done to ``before``."""
    assert after.status is RunStatus.RUNNING
    assert after.outcome is None
    # Nothing lost, duplicated or counted as a failure: the same attempts.
    assert attempts(after) == attempts(before)
    kept = (lambda d: d) if recovered else on_a_new_clock
    by_key = {(step, d.event_id): kept(d) for step, d in pending(before)}
    for step, delivery in pending(after):
        assert by_key[step, delivery.event_id] == delivery
        assert sim.done[step, delivery.event_id] == 0
    # Nothing executes or waits but what the resume started, under fresh ids.
    assert not after.waiting
    assert not [c for c in commands if isinstance(c, ResumeWorker)]
    assert not [c for c in commands if isinstance(c, Publish | Finish | CancelTimer)]
    started = [c for c in commands if isinstance(c, StartWorker)]
    assert set(after.workers) == {c.worker_id for c in started}
    assert [c.worker_id for c in started] == list(
        range(before.next_worker_id, after.next_worker_id)
    )
    # Each step starts over its unfinished attempts first, oldest delivery
    # first, then its queue as it was; a recovered run's retries stay pending.
    for name, spec in STEPS.items():
        unfinished = [w.delivery for w in before.workers.values() if w.step == name]
        unfinished += [w.delivery for w in before.waiting.values() if w.step == name]
        if not recovered:
            unfinished += [w.delivery for w in before.retries.values() if w.step == name]
        queue = [
            item.delivery if type(item) is Resumption else item for item in before.lanes[name].queue
        ]
        line = [kept(d) for d in [*sorted(unfinished, key=lambda d: d.event_id), *queue]]
        n = min(len(line), spec.num_workers)
        assert [c.delivery for c in started if c.step == name] == line[:n], name
        assert list(after.lanes[name].queue) == line[n:], name
    # How many events each attempt in flight sent stays in its memo, for its re-run.
    sends: dict[Key, tuple[int, int]] = {}
    for w in [*before.workers.values(), *before.waiting.values()]:
        if w.sent:
            sends[w.step, w.delivery.event_id] = (w.delivery.attempt, w.sent)
    for step, lane in before.lanes.items():
        for item in lane.queue:
            if type(item) is Resumption and item.sent:
                sends[step, item.delivery.event_id] = (item.delivery.attempt, item.sent)

    def sent(key: Key) -> tuple[int, int] | None:
        old = before.memos.get(key, WaitMemo()).sent
        new = sends.get(key)
        if new is None or (old is not None and old[0] == new[0] and old[1] >= new[1]):
            return old
        return new

    # Timers: the run's deadline, pending retries at their due time, step timers.
    timers = {(c.timer_id, c.deadline) for c in commands if isinstance(c, ScheduleTimer)}
    expected = {(f"step-{c.worker_id}", now + STEP_TIMEOUT) for c in started if c.step == "b"}
    if recovered:
        assert after.deadline == before.deadline
        assert after.retries == before.retries
        expected.add((RUN_TIMEOUT_TIMER, before.deadline))
        expected.update((timer_id, w.deadline) for timer_id, w in before.retries.items())
        # Questions asked and answers got stay; a wait the crash cut short
        # leaves its deadline for the same wait of the attempt's re-run.
        cut: dict[Key, dict[str, float]] = {}
        for w in before.waiting.values():
            if w.deadline is not None:
                cut.setdefault((w.step, w.delivery.event_id), {})[w.waiter_id] = w.deadline
        assert set(after.memos) == set(before.memos) | set(cut) | set(sends)
        for key, memo in after.memos.items():
            old = before.memos.get(key, WaitMemo())
            assert memo.published == old.published, key
            assert memo.answers == old.answers, key
            assert memo.deadlines == {**old.deadlines, **cut.get(key, {})}, key
            assert memo.sent == sent(key), key
    else:
        assert after.deadline == now + TIMEOUT
        assert not after.retries
        expected.add((RUN_TIMEOUT_TIMER, now + TIMEOUT))
        assert after.memos == {
            key: WaitMemo(
                answers=before.memos.get(key, WaitMemo()).answers,
                collected=before.memos.get(key, WaitMemo()).collected,
                sent=sent(key),
            )
            for key in set(before.memos) | set(sends)
        }
    assert timers == expected
    # Everything else stands.
    assert after.unclaimed == before.unclaimed
    assert after.recoveries == before.recoveries
    assert after.collections == before.collections
    assert after.next_event_id == before.next_event_id
    assert not after.idle


def start(sim: Sim) -> None:
    event = sim.new(sim.pick([A, B, C]))
    commands = sim.apply(RunStarted(event, 0.0))
    assert commands[0] == ScheduleTimer(RUN_TIMEOUT_TIMER, TIMEOUT)


# 1. Cut and replay.


@given(st.data())
def test_a_journal_prefix_replays_exactly(data: st.DataObject) -> None:
    """Any prefix of a journal (crashes and resumes included), replayed raw or
    read back from JSON, gives the live run's states and commands, tick for tick."""
    sim = Sim(data)
    start(sim)
    patience = data.draw(st.integers(0, 40), "patience")
    sim.run(patience, may_crash=True)
    sim.run(data.draw(st.integers(0, 20), "more ticks"), may_end=True, may_crash=True)
    cut = data.draw(st.integers(1, len(sim.journal)), "cut")
    raw = replayed = RunState.initial(SPEC)
    for tick, (state, commands) in zip(sim.journal[:cut], sim.records[:cut], strict=True):
        raw, again = reduce(raw, tick)
        assert again == commands, tick
        assert raw == state, tick
        back = through_journal(tick)
        assert back == tick
        replayed, again = reduce(replayed, back)
        assert again == commands, tick
        assert replayed == state, tick


# 2. Crash, resume, go on.


def crash_and_go_on(data: st.DataObject, seen: Counter[str] | None = None) -> None:
    """Crash at a random point (up to three times), resume from the journal, go
    on; every delivery then runs to its end exactly once, and the run ends.
    ``seen`` counts the kinds of states crashed in."""
    sim = Sim(data)
    start(sim)
    for _ in range(data.draw(st.integers(1, 3), "crashes")):
        ticks, until_woken = sim.picks(range(31), [False, True], label="ticks, until woken")
        sim.run(ticks, until_woken=until_woken)
        if seen is not None:
            state = sim.state
            seen["crashes"] += 1
            seen["executing"] += bool(state.workers)
            seen["waiting"] += bool(state.waiting)
            seen["retrying"] += bool(state.retries)
            seen["queued"] += any(lane.queue for lane in state.lanes.values())
            seen["woken, queued"] += bool(queued_resumptions(state))
            seen["asked"] += any(memo.published for memo in state.memos.values())
            seen["answered"] += any(memo.answers for memo in state.memos.values())
            seen["collecting"] += bool(state.collections)
            seen["sent"] += any(w.sent for w in state.workers.values())
            seen["unclaimed"] += bool(state.unclaimed)
        sim.crash(may_end=False)
    sim.run(data.draw(st.integers(0, 20), "ticks after the crash"))
    sim.drain()
    assert not pending(sim.state)
    assert set(sim.done) == sim.accepted
    assert all(n == 1 for n in sim.done.values())
    how = sim.pick(["stop", "cancel", "time out"], "ending")
    if how == "stop":
        sim.apply(EventSent(sim.new(B), now=sim.now))
    sim.end_by(how)
    assert sim.state.outcome is not None


@given(st.data())
def test_a_crashed_run_resumes_and_runs_to_its_end(data: st.DataObject) -> None:
    crash_and_go_on(data)


test_a_crashed_run_resumes_and_runs_to_its_end.__doc__ = crash_and_go_on.__doc__


def test_the_crash_property_crashes_in_the_interesting_states() -> None:
    """The crash property is only as good as the states it crashes in: it does
    crash runs with executing, waiting and retrying attempts, woken waits queued
    for a slot, queued work, questions and answers (derandomized, so stable)."""
    seen: Counter[str] = Counter()

    @settings(max_examples=100, database=None, derandomize=True)
    @given(st.data())
    def crash_and_count(data: st.DataObject) -> None:
        crash_and_go_on(data, seen)

    crash_and_count()
    crashes = seen.pop("crashes")
    rare = {kind: n for kind, n in seen.items() if n < crashes // 20}
    assert not rare, (crashes, dict(seen))


# 3. Examples.


def started_run(*ticks: Tick) -> RunState:
    state = RunState.initial(SPEC)
    for tick in [RunStarted(B(n=0), 0.0), *ticks]:
        state, _ = reduce(state, tick)
    return state


def test_a_recovered_run_keeps_its_deadline() -> None:
    state = started_run(StepCompleted(0, None, 40.0))
    assert state.deadline == TIMEOUT
    resumed, commands = reduce(state, RunResumed(60.0, recovered=True))
    assert resumed.deadline == TIMEOUT
    assert commands == [ScheduleTimer(RUN_TIMEOUT_TIMER, TIMEOUT)]
    # A saved context resumed elsewhere has a new clock: the deadline restarts.
    resumed, commands = reduce(state, RunResumed(60.0))
    assert resumed.deadline == 60.0 + TIMEOUT
    assert commands == [ScheduleTimer(RUN_TIMEOUT_TIMER, 60.0 + TIMEOUT)]


def test_a_recovered_run_past_its_deadline_times_out_on_the_next_timer() -> None:
    state = started_run()
    resumed, commands = reduce(state, RunResumed(TIMEOUT + 30.0, recovered=True))
    assert commands[0] == ScheduleTimer(RUN_TIMEOUT_TIMER, TIMEOUT)
    assert resumed.status is RunStatus.RUNNING
    ended, commands = reduce(resumed, TimerFired(RUN_TIMEOUT_TIMER, TIMEOUT + 30.0))
    assert commands == [Finish(TimedOut(TIMEOUT, ("b",)))]
    assert ended.status is RunStatus.TIMED_OUT


def test_a_recovered_run_keeps_its_retry_due_time() -> None:
    error = Boom("first try")
    state = started_run(StepFailed(0, error, 5.0, 1.0))
    assert state.retries["retry-0"].deadline == 6.0
    resumed, commands = reduce(state, RunResumed(3.0, recovered=True))
    assert commands == [
        ScheduleTimer(RUN_TIMEOUT_TIMER, TIMEOUT),
        ScheduleTimer("retry-0", 6.0),
    ]
    assert resumed.retries == state.retries
    assert not resumed.workers
    # When it fires, the second attempt starts.
    _, commands = reduce(resumed, TimerFired("retry-0", 6.0))
    retry = Delivery(0, B(n=0), 2, error, 1.0, last_failed_at=1.0)
    assert commands == [StartWorker(1, "b", retry), ScheduleTimer("step-1", 6.0 + STEP_TIMEOUT)]
    # Not recovered: the retry is due at once, with the same attempt number,
    # and the times of its failure are forgotten (they were on another clock).
    resumed, commands = reduce(state, RunResumed(3.0))
    assert commands == [
        ScheduleTimer(RUN_TIMEOUT_TIMER, 3.0 + TIMEOUT),
        StartWorker(1, "b", Delivery(0, B(n=0), 2, error)),
        ScheduleTimer("step-1", 3.0 + STEP_TIMEOUT),
    ]
    assert not resumed.retries


def test_a_waiting_step_runs_again_without_asking_again_when_recovered() -> None:
    question = Ask(n=0, topic="name?")
    state = started_run(WaitStarted(0, "name?", (H,), (), question, None, 1.0))
    assert state.memos[("b", 0)].published == {"name?": question}
    for recovered, asked in [(True, []), (False, [Publish(question)])]:
        resumed, commands = reduce(state, RunResumed(2.0, recovered))
        assert commands[1:] == [
            StartWorker(1, "b", Delivery(0, B(n=0))),
            ScheduleTimer("step-1", 2.0 + STEP_TIMEOUT),
        ]
        assert not resumed.waiting
        # The re-run reaches the same wait: it waits again, asking again only
        # if the run was not recovered (its stream then is a new one).
        waiting, commands = reduce(resumed, WaitStarted(1, "name?", (H,), (), question, None, 2.0))
        assert [c for c in commands if isinstance(c, Publish) and type(c.event) is Ask] == asked
        assert set(waiting.waiting) == {1}
        # The answer still goes to it.
        answer = H(n=1)
        _, commands = reduce(waiting, EventSent(answer, external=True, now=3.0))
        assert ResumeWorker(1, answer) in commands


def test_a_wait_cut_short_by_a_crash_keeps_its_deadline() -> None:
    state = started_run(WaitStarted(0, "name?", (H,), (), None, 10.0, 1.0))
    assert state.waiting[0].deadline == 11.0
    for recovered, deadline in [(True, 11.0), (False, 16.0)]:
        resumed, _ = reduce(state, RunResumed(5.0, recovered))
        # The re-run reaches the same wait at 6.0: a recovered run's clock went
        # on, so the wait ends when it would have; a saved context's starts anew.
        waiting, commands = reduce(resumed, WaitStarted(1, "name?", (H,), (), None, 10.0, 6.0))
        assert ScheduleTimer("wait-1", deadline) in commands
        assert waiting.waiting[1].deadline == deadline
        # Once only: a later wait under that id (a retry's) starts now.
        assert not waiting.memos.get(("b", 0), WaitMemo()).deadlines


def test_a_recovered_run_remembers_answers() -> None:
    answer = H(n=1)
    state = started_run(
        WaitStarted(0, "name?", (H,), (), Ask(n=0), None, 1.0),
        EventSent(answer, external=True, now=2.0),
    )
    assert state.workers[0].step == "b"  # resumed at once
    resumed, _ = reduce(state, RunResumed(3.0, recovered=True))
    # The re-run's wait returns the answer at once.
    _, commands = reduce(resumed, WaitStarted(1, "name?", (H,), (), Ask(n=0), None, 3.0))
    assert commands == [ResumeWorker(1, answer)]


def test_resume_only_a_running_run() -> None:
    with pytest.raises(TickRejected):
        reduce(RunState.initial(SPEC), RunResumed(0.0, recovered=True))
    ended, _ = reduce(started_run(), CancelRequested(1.0))
    assert reduce(ended, RunResumed(2.0, recovered=True)) == (ended, [])


def test_a_woken_wait_queued_at_a_crash_runs_again() -> None:
    """Step ``a`` has one worker.  Worker 0 waits, which lets worker 1 start;
    the answer comes while worker 1 holds the slot, so worker 0 is queued to
    resume.  The process dies.  Worker 0 died with it: its attempt must start
    again (and its memo answers its wait), not be resumed."""
    first, second, answer = A(n=1), A(n=2), H(n=3)
    spec = RunSpec({"a": STEPS["a"]}, stop_types=(Stop,), buffer_types=(H,))
    state = RunState.initial(spec)
    for tick in [
        RunStarted(first, 0.0),
        EventSent(second),
        WaitStarted(0, "w", (H,)),
        EventSent(answer, external=True),
    ]:
        state, _ = reduce(state, tick)
    assert queued_resumptions(state) == {0}
    state, commands = reduce(state, RunResumed(1.0, recovered=True))
    (running,) = [c for c in commands if isinstance(c, StartWorker)]
    state, more = reduce(state, StepCompleted(running.worker_id))
    commands += more
    assert not [c for c in commands if isinstance(c, ResumeWorker)]
    (again,) = [c for c in commands if isinstance(c, StartWorker) and c.delivery.event_id == 0]
    assert again.delivery == Delivery(0, first)
    # Its wait has its answer already.
    _, commands = reduce(state, WaitStarted(again.worker_id, "w", (H,)))
    assert commands == [ResumeWorker(again.worker_id, answer)]


# Sends of an attempt that runs again.


def sent_in(state: RunState, *ticks: Tick) -> tuple[RunState, list[list[Command]]]:
    """``state`` after ``ticks``, with the commands of each tick."""
    produced = []
    for tick in ticks:
        state, commands = reduce(state, tick)
        produced.append(commands)
    return state, produced


def step_send(event: Ev, worker_id: int, now: float = 1.0) -> EventSent:
    return EventSent(event, now=now, worker_id=worker_id)


def b_worker(state: RunState) -> int:
    """The id of the worker executing step ``b`` (``started_run``'s delivery)."""
    (worker_id,) = [i for i, w in state.workers.items() if w.step == "b"]
    return worker_id


@pytest.mark.parametrize("recovered", [True, False])
def test_a_re_run_does_not_send_again_what_its_attempt_sent(recovered: bool) -> None:
    """Worker 0 (step ``b``, attempt 1) sends two events, then its process dies
    (or its context is saved).  Its re-run sends them again: those two sends
    are dropped (no command, no new event), the third one is new."""
    state, _ = sent_in(started_run(), step_send(C(n=1), 0), step_send(C(n=2), 0))
    assert state.workers[0].sent == 2
    assert state.next_event_id == 3
    state, _ = reduce(state, RunResumed(2.0, recovered))
    assert state.memos[("b", 0)].sent == (1, 2)
    rerun = b_worker(state)
    assert state.workers[rerun].sent == 0
    again, produced = sent_in(
        state,
        step_send(C(n=1), rerun, 3.0),
        step_send(C(n=2), rerun, 3.0),
        step_send(C(n=3), rerun, 3.0),
    )
    assert produced[:2] == [[], []]
    assert again.next_event_id == 4
    assert [d.event for step, d in pending(again) if step == "c"] == [C(n=1), C(n=2), C(n=3)]
    assert again.workers[rerun].sent == 3
    # The caller's events (and a journal's sends recorded without a worker id)
    # are never taken for repeats.
    again, _ = reduce(state, EventSent(C(n=1), external=True, now=3.0))
    assert again.next_event_id == 4


def test_a_retry_sends_anew() -> None:
    """A retry is a new attempt: what the failed attempt sent is delivered
    again if the retry sends it.  A re-run of the retry after a crash skips
    what the retry sent."""
    state, _ = sent_in(started_run(), step_send(C(n=1), 0), RunResumed(2.0, recovered=True))
    rerun = b_worker(state)
    state, produced = sent_in(
        state,
        step_send(C(n=1), rerun, 2.0),  # attempt 1 again: dropped
        StepFailed(rerun, Boom("down"), 0.0, 2.0),
        TimerFired(f"retry-{rerun}", 2.0),
    )
    assert produced[0] == []
    retry = b_worker(state)
    assert state.workers[retry].delivery.attempt == 2
    before = state.next_event_id
    state, _ = reduce(state, step_send(C(n=1), retry, 3.0))
    assert state.next_event_id == before + 1  # delivered: the retry's own send
    state, _ = reduce(state, RunResumed(4.0, recovered=True))
    assert state.memos[("b", 0)].sent == (2, 1)
    rerun = b_worker(state)
    state, produced = sent_in(state, step_send(C(n=1), rerun, 5.0), step_send(C(n=5), rerun, 5.0))
    assert produced[0] == []
    assert state.next_event_id == before + 2


def test_a_re_run_cut_short_again_keeps_the_larger_count() -> None:
    state, _ = sent_in(
        started_run(),
        step_send(C(n=1), 0),
        step_send(C(n=2), 0),
        RunResumed(2.0, recovered=True),
    )
    state, _ = sent_in(
        state,
        step_send(C(n=1), b_worker(state), 2.0),  # the re-run got one send far ...
        RunResumed(3.0, recovered=True),  # ... and its process died too
    )
    assert state.memos[("b", 0)].sent == (1, 2)
    assert state.next_event_id == 3
    rerun = b_worker(state)
    state, produced = sent_in(
        state,
        step_send(C(n=1), rerun, 4.0),
        step_send(C(n=2), rerun, 4.0),
        step_send(C(n=3), rerun, 4.0),
    )
    assert produced[:2] == [[], []]
    assert state.next_event_id == 4


def test_sends_are_counted_over_a_wait() -> None:
    """A step that sends, waits, and sends again: its re-run skips both sends,
    including one it made while waiting (from a task of its own), and one made
    after the wait, and its wait returns the remembered answer."""
    answer = H(n=9)
    state, _ = sent_in(
        started_run(),
        step_send(C(n=1), 0),
        WaitStarted(0, "w", (H,), (), None, None, 1.0),
        step_send(C(n=2), 0),  # while waiting
        EventSent(answer, external=True, now=2.0),  # resumes worker 0
        step_send(C(n=3), 0, 2.0),
    )
    assert state.workers[0].sent == 3
    state, _ = reduce(state, RunResumed(3.0, recovered=True))
    assert state.memos[("b", 0)].sent == (1, 3)
    events = state.next_event_id
    rerun = b_worker(state)
    state, produced = sent_in(
        state,
        step_send(C(n=1), rerun, 3.0),
        WaitStarted(rerun, "w", (H,), (), None, None, 3.0),
        step_send(C(n=2), rerun, 3.0),
        step_send(C(n=3), rerun, 3.0),
        step_send(C(n=4), rerun, 3.0),
    )
    assert produced[1] == [ResumeWorker(rerun, answer)]
    assert produced[0] == produced[2] == produced[3] == []
    assert state.next_event_id == events + 1


def test_a_send_from_a_worker_the_run_does_not_know_is_delivered() -> None:
    """A send under a worker id that neither executes nor waits (a stray task
    of a step that has finished) is an event like any other: delivered, and
    counted nowhere."""
    state, _ = sent_in(started_run(), StepCompleted(0, None, 1.0))
    state, commands = reduce(state, step_send(C(n=1), 0, 2.0))
    assert StartWorker(1, "c", Delivery(1, C(n=1))) in commands
    assert not state.memos
