"""The reducer under random interleavings of ticks (``hypothesis.stateful``).

The machine drives ``reduce`` with the ticks a real run produces (start, events
from outside, steps completing, failing, collecting and waiting for events,
abandoned waits, timers, cancel) in any order, keeps a model of what should have
happened, and checks the rules of ``anyflow/_core/reducer.py`` as invariants
after every step:

1. no delivery is lost or duplicated: every (event, step) delivery accepted is
   in exactly one place: a step's queue (as a ``Delivery`` or inside a
   ``Resumption``), an executing worker, a waiter, a pending retry, or done;
2. no delivery is misrouted: its step accepts its event's type;
3. a step never runs more than ``num_workers`` deliveries, ``Lane.running``
   counts its executing workers (waiting ones hold no slot), and work waits in
   a queue only while its step is full;
4. a finished run stays finished: every later tick returns the very same state
   and no commands;
5. ``StartWorker`` and ``ResumeWorker`` take queued work from the front of its
   step's queue (or new work, or the retry or resumption the tick itself puts
   at the front), ``StartWorker`` under a fresh worker id;
6. an event sent in goes to every waiter it matches, oldest first (of the
   step it was sent to, if any), else to the steps that accept it, else it is
   kept as unclaimed; no event is given to a waiter and a step;
7. waiters, unclaimed events, wait memos, recoveries and armed timers (with
   their deadlines) match the model; a step's timeout budget carries over its
   waits; a timer that fires early is scheduled again and one that fires late
   changes nothing; ``RunState.idle`` is set exactly while nothing executes,
   something waits and nothing is queued or retrying, and the idle event is
   published on each rise of that flag only;
8. the reducer is deterministic: replaying the recorded ticks reproduces the
   same commands and an equal final state (checked in ``teardown``);
9. an event a step sends with ``ctx.send_event`` enters the run once: when a
   resume (``RunResumed(recovered=True)``, the process died) makes an attempt
   run again, the re-run sends again, in order, what its attempt sent, and
   those repeats are dropped (no delivery, no command); its sends beyond them
   are new, and so are all the sends of a retry (a new attempt);
10. an event routed to the join step ``j`` is, at every moment, in exactly one
   place: held in its join buffer (in arrival order, as the model holds it), or
   in the set of exactly one of its deliveries (wherever that delivery is, or
   done); a set leaves the buffer as soon as it is complete, as the
   lexicographically first choice of held events by arrival, slot by slot, and
   each event of a set fits its slot.

Worker ids are drawn from the state (executing workers for the ticks a worker
sends, waiters for ``WaitAbandoned``): a worker moves between executing and
waiting as the rules go, which a consumed bundle cannot follow.

A resume is the crash of a durable run: the driver's timers die with it, the
reducer reschedules the run's deadline and its pending retries, and every
attempt that was executing or waiting starts over under a fresh worker id.
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
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from anyflow._core.commands import (
    CancelTimer,
    CancelWorker,
    Command,
    Finish,
    Publish,
    ResumeWorker,
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
    Resumption,
    RunSpec,
    RunState,
    RunStatus,
    StepSpec,
    TimedOut,
    Waiter,
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
    WaitAbandoned,
    WaitStarted,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

_serials = itertools.count()


class Ev:
    """An opaque event with a serial number: equal-looking events stay distinct."""

    def __init__(self, topic: str = "x") -> None:
        self.serial = next(_serials)
        self.topic = topic

    def __repr__(self) -> str:
        return f"{type(self).__name__}#{self.serial}({self.topic})"


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


class H(Ev):
    """An answer from outside (a ``HumanResponseEvent``): no step accepts it, and
    one that no waiter takes is kept as unclaimed."""


class F(Ev):
    """The failure event a caught step's final failure hands to the catcher."""


class Ask(Ev):
    """A waiter event (the question published when a step starts waiting)."""


IDLE = Ev()
"""The spec's idle event."""

STEP_TIMEOUT = 5.0
STEPS = {
    "a": StepSpec("a", (A,), num_workers=1),
    "b": StepSpec("b", (B,), num_workers=2, timeout=STEP_TIMEOUT),
    "c": StepSpec("c", (A, C), num_workers=3),
    "k": StepSpec("k", (F,), num_workers=1),
    "j": StepSpec("j", (B, C), num_workers=2, slots=(B, C, B)),
}
JOINS = {"j": (B, C, B)}
"""The join steps, with their slots: ``j`` takes two Bs and a C at a time."""
ROUTES: dict[type, tuple[str, ...]] = {
    A: ("a", "c"),
    B: ("b", "j"),
    C: ("c", "j"),
    F: ("k",),
}
"""Where each routable type goes, written out by hand rather than computed."""
PUBLISHED = (C, P)
"""C is published and routed, P only published."""
CATCHERS = {"b": ("k", 2)}
"""Step "b"'s final failures go to step "k", twice at most."""
TIMEOUT = 100.0

event_types = st.sampled_from([A, B, C])
sent_types = st.sampled_from([A, B, C, H, H])
topics = st.sampled_from(["x", "y"])
outputs = st.sampled_from([None, A, B, C, P])
retry_delays = st.sampled_from([0.5, 2.0])
elapsed = st.sampled_from([0.0, 1.0, 3.0])
WAITS: list[tuple[str, tuple[type, ...], tuple[tuple[str, Any], ...]]] = [
    ("any answer", (H,), ()),
    ("answer x", (H,), (("topic", "x"),)),
    ("answer y", (H,), (("topic", "y"),)),
    ("a B", (B,), ()),
    ("a C about x", (C,), (("topic", "x"),)),
    ("an answer or a C", (H, C), ()),
]
"""(waiter id, event types, requirements) of the waits steps make.  One id always
means one kind of wait, as in a step whose retry runs the same code again."""
QUESTIONS = {(waiter_id, n): Ask(f"{waiter_id} #{n}") for waiter_id, _, _ in WAITS for n in (0, 1)}
"""Two questions a wait may ask: the same one again, or a changed one."""
wait_timeouts = st.sampled_from([None, 1.0, 10.0])

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


def model_bind(held: list[Any], slots: tuple[type, ...]) -> tuple[Any, ...] | None:
    """A join's set as rule 7 describes it: of all the ways to give each slot a
    distinct held event that fits it, the one whose positions (by arrival),
    read slot by slot, come first.  Brute force: every arrangement, in order."""
    for positions in itertools.permutations(range(len(held)), len(slots)):
        if all(isinstance(held[p], t) for p, t in zip(positions, slots, strict=True)):
            return tuple(held[p] for p in positions)
    return None


def model_matches(waiter: Waiter, event: Any) -> bool:
    """Whether ``event`` answers ``waiter``, as ``wait_for_event`` documents it."""
    return isinstance(event, waiter.event_types) and all(
        getattr(event, name, object()) == value for name, value in waiter.requirements
    )


def independent_copy(state: RunState) -> RunState:
    """An equal state that shares no mapping with ``state``."""
    return attrs.evolve(
        state,
        lanes=dict(state.lanes),
        workers=dict(state.workers),
        waiting=dict(state.waiting),
        memos=dict(state.memos),
        recoveries=dict(state.recoveries),
        retries=dict(state.retries),
        collections=dict(state.collections),
        joins=dict(state.joins),
    )


def all_deliveries(state: RunState) -> list[tuple[str, Delivery]]:
    """Every delivery in the state, with its step: queued (as such or to be
    resumed), executing, waiting for an event, or waiting to retry."""
    found = [
        (step, item.delivery if type(item) is Resumption else item)
        for step, lane in state.lanes.items()
        for item in lane.queue
    ]
    found += [(w.step, w.delivery) for w in state.workers.values()]
    found += [(w.step, w.delivery) for w in state.waiting.values()]
    found += [(w.step, w.delivery) for w in state.retries.values()]
    return found  # type: ignore[return-value]


def queued_resumptions(state: RunState) -> dict[int, str]:
    """Worker ids of the waits that ended and wait for a slot, with their steps."""
    return {
        item.worker_id: step
        for step, lane in state.lanes.items()
        for item in lane.queue
        if type(item) is Resumption
    }


def unbudgeted(item: Delivery | Resumption) -> Any:
    """What a ``StartWorker`` or ``ResumeWorker`` tells of the work it takes."""
    if type(item) is Resumption:
        return (item.worker_id, item.delivery, item.event, item.timed_out)
    return item


def may_end(machine: ReducerMachine) -> bool:
    """Whether the rules that end the run are enabled yet (see ``start``)."""
    return len(machine.ticks) >= machine.patience


def has_workers(machine: ReducerMachine) -> bool:
    return bool(machine.state.workers)


class ReducerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.spec = RunSpec(
            steps=STEPS,
            stop_types=(S,),
            publish_types=PUBLISHED,
            timeout=TIMEOUT,
            catchers=CATCHERS,
            buffer_types=(H,),
            idle_event=IDLE,
        )
        self.state = RunState.initial(self.spec)
        self.ticks: list[Tick] = []
        self.produced: list[list[Command]] = []
        self.now = 0.0
        self.accepted: dict[Pair, Any] = {}
        """Every delivery the reducer should have made, with its event."""
        self.delivered: set[int] = set()
        """Serials of the events delivered to steps."""
        self.done: set[Pair] = set()
        """Deliveries whose step completed or failed for good."""
        self.ever_started: set[int] = set()
        self.started_at: dict[int, float] = {}
        """When each worker started its attempt (what its ``StepFailed`` tells)."""
        self.armed: dict[str, float] = {}
        """Timers (other than the run timeout) scheduled and neither fired nor
        cancelled, with their deadlines: what the driver's timers would be."""
        self.ever_armed: set[str] = set()
        self.interrupted: set[int] = set()
        """Executing workers whose step timer fired (they were sent ``CancelWorker``)."""
        self.buffers: dict[tuple[str, str], list[Any]] = {}
        """The model of ``RunState.collections``."""
        self.waiters: dict[int, Waiter] = {}
        """The model of ``RunState.waiting``, oldest first."""
        self.unclaimed: list[tuple[Any, str | None]] = []
        """Events nobody took yet, with the step they were sent to."""
        self.memos: dict[tuple[str, int], tuple[dict[str, Any], dict[str, Any]]] = {}
        """The model of ``RunState.memos``: (questions asked, answers), by waiter id."""
        self.recoveries: dict[str, int] = {}
        self.given: dict[int, set[tuple[str, int]]] = {}
        """Event serial -> the deliveries (step, event id) whose waits got it."""
        self.outcome: Any = None
        self.patience = 0
        self.cut: dict[tuple[str, int], dict[str, float]] = {}
        """Deadlines of the waits a resume cut short, by delivery and waiter id:
        the same wait of the attempt's re-run keeps its deadline."""
        self.sends: dict[tuple[str, int, int], list[tuple[Any, str | None]]] = {}
        """What each attempt, as (step, event id, attempt), sent with
        ``send_event`` and where to, in order: what its re-run sends again."""
        self.position: dict[int, int] = {}
        """How many events each live execution, by worker id, has sent."""
        self.held: dict[str, list[Any]] = {name: [] for name in JOINS}
        """The model of ``RunState.joins``: each join step's held events, oldest first."""
        self.joined: dict[str, list[int]] = {name: [] for name in JOINS}
        """Serials of the events routed to each join step."""
        self.done_sets: dict[tuple[str, int], tuple[Any, ...]] = {}
        """The sets of the join deliveries that finished, by (step, event id)."""
        self.entered: Counter[int] = Counter()
        """Serials of the events steps sent: how many times each entered the run
        (delivered to steps, given to a waiter or kept unclaimed), as observed."""

    # Helpers.

    @property
    def running(self) -> bool:
        return self.state.status is RunStatus.RUNNING

    def draw_worker(self, data: st.DataObject) -> int:
        return data.draw(st.sampled_from(sorted(self.state.workers)), label="worker")

    def apply(
        self,
        tick: Tick,
        new_event: Any = None,
        new_steps: tuple[str, ...] = (),
        front: tuple[str, Delivery | Resumption] | None = None,
        fronts: list[tuple[str, Resumption]] | None = None,
        restored: dict[str, list[Delivery]] | None = None,
    ) -> list[Command]:
        """Reduce ``tick``; check the rules every tick obeys; return the commands.

        ``new_event`` is the event the tick should deliver to ``new_steps``;
        ``front`` the retry or resumption the tick should put at the front of
        its step's queue (to be taken at once if the step has a free slot),
        ``fronts`` the resumptions of several waits the tick ends, in order;
        ``restored`` each step's queue as a resume rebuilds it.
        """
        before = self.state
        after, commands = reduce(before, tick)
        self.ticks.append(tick)
        self.produced.append(commands)
        if before.status.finished:
            # Rule 4: a finished run ignores everything.
            assert after is before
            assert commands == []
            return commands
        self.state = after

        new_delivery = None
        new_items: dict[str, Delivery] = {}
        if new_event is not None:
            event_id = before.next_event_id
            new_delivery = Delivery(event_id, new_event)
            for step in new_steps:
                if step in JOINS:
                    # Rule 7: held until its set is complete, then one delivery.
                    self.joined[step].append(new_event.serial)
                    held = [*self.held[step], new_event]
                    bound = model_bind(held, JOINS[step])
                    if bound is None:
                        self.held[step] = held
                        continue
                    self.held[step] = [ev for ev in held if all(ev is not b for b in bound)]
                    new_items[step] = Delivery(event_id, new_event, bound=bound)
                else:
                    new_items[step] = new_delivery
                assert (event_id, step) not in self.accepted
                self.accepted[event_id, step] = new_event
            self.delivered.add(new_event.serial)
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
        # ... for work that was queued (taken from the front) or is new.
        taken: dict[str, list[Any]] = {step: [] for step in STEPS}
        for command in commands:
            if isinstance(command, StartWorker):
                timeout = STEPS[command.step].timeout
                deadline = None if timeout is None else tick.now + timeout
                worker = Worker(command.step, command.delivery, deadline)
                assert after.workers[command.worker_id] == worker
                self.started_at[command.worker_id] = tick.now
                taken[command.step].append(command.delivery)
            elif isinstance(command, ResumeWorker):
                worker = after.workers[command.worker_id]
                if command.worker_id not in before.workers:
                    taken[worker.step].append(
                        (command.worker_id, worker.delivery, command.event, command.timed_out)
                    )
                if command.event is not None:
                    # Rule 6: an event goes to waits (a memoized answer goes
                    # again to the same delivery's), and not to a step.
                    owner = (worker.step, worker.delivery.event_id)
                    self.given.setdefault(command.event.serial, set()).add(owner)
                    assert command.event.serial not in self.delivered
        for step in STEPS:
            candidates = list(before.lanes[step].queue) if restored is None else restored[step]
            for front_step, item in ([front] if front is not None else []) + (fronts or []):
                if front_step != step:
                    continue
                # A retry goes first; a woken wait goes after the woken waits
                # already queued, before every new delivery.
                at = 0
                if type(item) is Resumption:
                    while at < len(candidates) and type(candidates[at]) is Resumption:
                        at += 1
                candidates.insert(at, item)
            if step in new_items:
                candidates.append(new_items[step])
            n = len(taken[step])
            assert taken[step] == [unbudgeted(item) for item in candidates[:n]], step
            assert list(after.lanes[step].queue) == candidates[n:], step
            for item in candidates[:n]:
                if type(item) is Resumption:
                    # The step timeout goes on with what the attempt had left.
                    timeout = STEPS[step].timeout if item.budget is None else item.budget
                    deadline = None if timeout is None else tick.now + timeout
                    assert after.workers[item.worker_id].deadline == deadline

        finishes = [c for c in commands if isinstance(c, Finish)]
        if after.status.finished:
            assert after.outcome is not None
            assert finishes == [Finish(after.outcome)]
            assert commands[-1] is finishes[0]
            self.outcome = after.outcome
        else:
            assert finishes == []
            assert after.outcome is None

        # Rule 7: idle is published when the flag rises, and then only.
        rose = after.status is RunStatus.RUNNING and after.idle and not before.idle
        assert commands.count(Publish(IDLE)) == int(rose)

        for command in commands:
            if isinstance(command, CancelWorker):
                assert tick == TimerFired(f"step-{command.worker_id}", self.now)
                assert command.worker_id in after.workers
                self.interrupted.add(command.worker_id)
            elif isinstance(command, CancelTimer):
                self.armed.pop(command.timer_id, None)
            elif isinstance(command, ScheduleTimer) and command.timer_id != RUN_TIMEOUT_TIMER:
                timer_id = command.timer_id
                if tick == TimerFired(timer_id, tick.now):
                    # Fired early: scheduled again for the same deadline.
                    assert self.armed[timer_id] == command.deadline > tick.now
                    continue
                assert timer_id not in self.armed, timer_id
                if timer_id.startswith("retry-"):
                    # A resume schedules the pending retries again.
                    assert restored is not None or timer_id not in self.ever_armed, timer_id
                elif timer_id.startswith("step-"):
                    worker_id = int(timer_id[len("step-") :])
                    assert command.deadline == after.workers[worker_id].deadline
                    self.interrupted.discard(worker_id)
                else:
                    worker_id = int(timer_id[len("wait-") :])
                    assert command.deadline == after.waiting[worker_id].deadline
                self.armed[timer_id] = command.deadline
                self.ever_armed.add(timer_id)
        return commands

    def wake(self, worker_id: int, event: Any, timed_out: bool) -> tuple[str, Resumption]:
        """The model's side of a wait that ended: the resumption the reducer should
        queue in the waiter's step after the waits woken before it (or resume at once)."""
        waiter = self.waiters.pop(worker_id)
        if event is not None:
            key = (waiter.step, waiter.delivery.event_id)
            published, answers = self.memos.get(key, ({}, {}))
            self.memos[key] = (published, {**answers, waiter.waiter_id: event})
        return waiter.step, Resumption(
            worker_id, waiter.delivery, event, timed_out, waiter.budget, waiter.sent
        )

    def check_resumed(self, commands: list[Command], front: tuple[str, Resumption]) -> None:
        """A woken waiter is resumed at once if its step has a free slot, else
        queued after the waiters woken before it."""
        self.check_all_resumed(commands, [front])

    def check_all_resumed(
        self, commands: list[Command], fronts: list[tuple[str, Resumption]]
    ) -> None:
        """Each woken waiter (in ``fronts``, oldest first) is resumed at once if
        its step has a free slot, else queued, in order, after the waiters woken
        before it."""
        resumes = [c for c in commands if isinstance(c, ResumeWorker)]
        expected = []
        queued_now: dict[str, list[Resumption]] = {}
        for step, item in fronts:
            if item.worker_id in self.state.workers:
                expected.append(ResumeWorker(item.worker_id, item.event, item.timed_out))
            else:
                queued_now.setdefault(step, []).append(item)
        assert resumes == expected
        for step, items in queued_now.items():
            woken = []
            for queued in self.state.lanes[step].queue:
                if type(queued) is not Resumption:
                    break
                woken.append(queued)
            assert woken[-len(items) :] == items  # after the waits woken before them

    def finished_delivery(self, worker: Worker) -> None:
        self.done.add((worker.delivery.event_id, worker.step))
        if worker.step in JOINS:
            assert worker.delivery.bound is not None
            self.done_sets[worker.step, worker.delivery.event_id] = worker.delivery.bound
        self.memos.pop((worker.step, worker.delivery.event_id), None)
        self.cut.pop((worker.step, worker.delivery.event_id), None)

    def send_in(self, tick: EventSent) -> None:
        """Apply an event sent in that the run takes (it is no repeat), and check
        where it went: to every waiter it matches, else to the steps that
        accept it, else to the unclaimed events (rule 6)."""
        event, step = tick.event, tick.step
        routes = ROUTES.get(type(event), ())
        waiters = [
            worker_id
            for worker_id, w in self.waiters.items()
            if (step is None or w.step == step) and model_matches(w, event)
        ]
        if waiters:
            # Rule 6: every matching waiter gets it, oldest first, and no step.
            fronts = [self.wake(worker_id, event, timed_out=False) for worker_id in waiters]
            commands = self.apply(tick, fronts=fronts)
            self.check_all_resumed(commands, fronts)
        elif routes:
            self.apply(tick, event, routes if step is None else (step,))
        else:
            assert self.apply(tick) == []
            self.unclaimed.append((event, step))

    # Rules.

    @initialize(kind=event_types, patience=st.integers(10, 60))
    def start(self, kind: type, patience: int) -> None:
        """Start the run; the rule that ends it waits for ``patience`` ticks.

        Without patience most runs would end before their queues filled up and
        their steps waited, and a run's remaining steps would all be ignored.
        """
        self.patience = patience
        event = kind()
        commands = self.apply(RunStarted(event, 0.0), event, ROUTES[kind])
        assert commands[0] == ScheduleTimer(RUN_TIMEOUT_TIMER, TIMEOUT)
        assert self.state.status is RunStatus.RUNNING
        assert self.state.deadline == TIMEOUT

    @rule(
        kinds=st.lists(st.tuples(sent_types, topics), min_size=1, max_size=4),
        external=st.booleans(),
        later=elapsed,
        data=st.data(),
    )
    def send(
        self, kinds: list[tuple[type, str]], external: bool, later: float, data: st.DataObject
    ) -> None:
        """Send a few events, each to every step that accepts it or to one of them;
        they may answer waiters."""
        self.now += later
        for kind, topic in kinds:
            event = kind(topic)
            step = self.draw_target(data, event)
            tick = EventSent(event, step, external, self.now)
            if self.running:
                self.send_in(tick)
            else:
                self.apply(tick)

    def draw_target(self, data: st.DataObject, event: Any) -> str | None:
        """Where an event is sent: an answer to any step (for its waiters), or
        anything to no step in particular, others to a step that accepts them."""
        targets = tuple(STEPS) if type(event) is H else ROUTES.get(type(event), ())
        step: str | None = data.draw(st.sampled_from((None, *targets)), label=f"step for {event}")
        return step

    @precondition(lambda self: bool(self.state.workers or self.state.waiting))
    @rule(kind=sent_types, topic=topics, data=st.data())
    def send_from_step(self, kind: type, topic: str, data: st.DataObject) -> None:
        """A step attempt sends an event with ``ctx.send_event`` (while it waits,
        from a task of its own).  An attempt that runs again after a resume
        sends again, in order, what it sent before: rule 9 drops those repeats;
        what it sends beyond them is new."""
        state = self.state
        worker_id = data.draw(
            st.sampled_from(sorted([*state.workers, *state.waiting])), label="sender"
        )
        sender = state.workers.get(worker_id) or state.waiting[worker_id]
        attempt = (sender.step, sender.delivery.event_id, sender.delivery.attempt)
        sent = self.sends.setdefault(attempt, [])
        position = self.position.get(worker_id, 0)
        repeat = position < len(sent)
        if repeat:
            event, step = sent[position]
        else:
            event = kind(topic)
            step = self.draw_target(data, event)
        tick = EventSent(event, step, False, self.now, worker_id)
        if not self.running:
            self.apply(tick)
            return
        self.position[worker_id] = position + 1
        # The reducer counts the send on the sender, executing or waiting.
        counted = attrs.evolve(sender, sent=position + 1)
        if worker_id in state.workers:
            expected = attrs.evolve(state, workers={**state.workers, worker_id: counted})
        else:
            expected = attrs.evolve(state, waiting={**state.waiting, worker_id: counted})
            self.waiters[worker_id] = attrs.evolve(self.waiters[worker_id], sent=position + 1)
        if repeat:
            assert self.apply(tick) == []
            assert self.state == expected
        else:
            sent.append((event, step))
            self.send_in(tick)
        after = self.state
        if (
            after.next_event_id != state.next_event_id
            or after.unclaimed != state.unclaimed
            or after.waiting.keys() != state.waiting.keys()
        ):
            self.entered[event.serial] += 1

    @rule(downtime=st.sampled_from([0.0, 2.0]))
    def resume(self, downtime: float) -> None:
        """The process dies and another resumes the run from its journal: every
        attempt that was executing or waiting starts over, first in its step's
        queue, oldest delivery first; a woken wait queued for a slot starts over
        in its place; questions, answers, retries and the deadline stand."""
        before = self.state
        self.now += downtime
        tick = RunResumed(self.now, recovered=True)
        if not self.running:
            self.apply(tick)
            return
        unfinished: list[Worker | Waiter] = [*before.workers.values(), *before.waiting.values()]
        restored = {}
        for step, lane in before.lanes.items():
            again = sorted(
                (w.delivery for w in unfinished if w.step == step), key=lambda d: d.event_id
            )
            queue = [item.delivery if type(item) is Resumption else item for item in lane.queue]
            restored[step] = [*again, *queue]
        for waiter in before.waiting.values():
            if waiter.deadline is not None:
                key = (waiter.step, waiter.delivery.event_id)
                self.cut.setdefault(key, {})[waiter.waiter_id] = waiter.deadline
        # The old process's workers, waits and timers are gone.
        self.waiters = {}
        self.position = {}
        self.interrupted = set()
        self.armed = {}
        commands = self.apply(tick, restored=restored)
        assert ScheduleTimer(RUN_TIMEOUT_TIMER, TIMEOUT) in commands
        assert self.state.retries == before.retries
        assert not self.state.waiting

    def _complete(self, worker_id: int, output: type | None) -> None:
        was_running = self.running
        event = None if output is None else output()
        worker = self.state.workers[worker_id]
        routed = output in ROUTES
        commands = self.apply(
            StepCompleted(worker_id, event, self.now),
            event if routed else None,
            ROUTES[output] if routed else (),  # type: ignore[index]
        )
        if was_running:
            self.finished_delivery(worker)
            published = [c for c in commands if isinstance(c, Publish) and c.event is not IDLE]
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

    @precondition(has_workers)
    @rule(output=outputs, data=st.data())
    def complete(self, output: type | None, data: st.DataObject) -> None:
        self._complete(self.draw_worker(data), output)

    def _fail(self, worker_id: int, delay: float | None, elapsed: float, caught: bool) -> None:
        was_running = self.running
        self.now += elapsed
        error = ValueError(f"failure at tick {len(self.ticks)}")
        worker = self.state.workers[worker_id]
        delivery = worker.delivery
        failure = F() if caught else None
        catcher = CATCHERS.get(worker.step)
        recovered = (
            was_running
            and delay is None
            and failure is not None
            and catcher is not None
            and self.recoveries.get(catcher[0], 0) < catcher[1]
        )
        commands = self.apply(
            StepFailed(worker_id, error, delay, self.now, failure, self.started_at[worker_id]),
            failure if recovered else None,
            (catcher[0],) if recovered and catcher is not None else (),
        )
        if not was_running:
            return
        if delay is None:
            self.finished_delivery(worker)
            if recovered:
                assert catcher is not None
                self.recoveries[catcher[0]] = self.recoveries.get(catcher[0], 0) + 1
                assert self.running
            else:
                assert self.state.status is RunStatus.FAILED
                assert self.state.outcome == Failed(worker.step, error, delivery.attempt)
        else:
            timer_id = f"retry-{worker_id}"
            assert ScheduleTimer(timer_id, self.now + delay) in commands
            first = self.now if delivery.first_failed_at is None else delivery.first_failed_at
            # Rule 5: the first attempt's start is kept from the first failure on.
            began = delivery.first_started_at
            assert self.state.retries[timer_id] == Worker(
                worker.step,
                Delivery(
                    delivery.event_id,
                    delivery.event,
                    delivery.attempt + 1,
                    error,
                    first,
                    bound=delivery.bound,
                    first_started_at=self.started_at[worker_id] if began is None else began,
                    last_failed_at=self.now,
                ),
                self.now + delay,
            )

    @precondition(has_workers)
    @rule(delay=retry_delays, elapsed=elapsed, caught=st.booleans(), data=st.data())
    def fail_and_retry(
        self, delay: float, elapsed: float, caught: bool, data: st.DataObject
    ) -> None:
        """A retry never goes to the catcher, failure event or not."""
        self._fail(self.draw_worker(data), delay, elapsed, caught)

    @precondition(lambda self: any(w.step in CATCHERS for w in self.state.workers.values()))
    @rule(elapsed=elapsed, data=st.data())
    def fail_caught(self, elapsed: float, data: st.DataObject) -> None:
        """A caught step fails for good: recovered while the catcher has some left."""
        caught = sorted(i for i, w in self.state.workers.items() if w.step in CATCHERS)
        self._fail(data.draw(st.sampled_from(caught), label="worker"), None, elapsed, True)

    @precondition(has_workers)
    @rule(
        kind=st.sampled_from(WAITS),
        ask=st.sampled_from([None, 0, 1]),
        timeout=wait_timeouts,
        data=st.data(),
    )
    def wait(
        self,
        kind: tuple[str, tuple[type, ...], tuple[tuple[str, Any], ...]],
        ask: int | None,
        timeout: float | None,
        data: st.DataObject,
    ) -> None:
        waiter_id, types, required = kind
        worker_id = self.draw_worker(data)
        was_running = self.running
        before = self.state
        worker = before.workers[worker_id]
        question = None if ask is None else QUESTIONS[waiter_id, ask]
        tick = WaitStarted(worker_id, waiter_id, types, required, question, timeout, self.now)
        if not was_running:
            self.apply(tick)
            return
        key = (worker.step, worker.delivery.event_id)
        deadline = None if timeout is None else self.now + timeout
        # The same wait of an attempt a resume cut short keeps its deadline.
        cut = self.cut.get(key, {})
        kept = cut.pop(waiter_id, None)
        if kept is not None and timeout is not None:
            deadline = kept
        waiter = Waiter(
            worker.step,
            worker.delivery,
            waiter_id,
            types,
            required,
            deadline=deadline,
            budget=None if worker.deadline is None else max(worker.deadline - self.now, 0.0),
            sent=self.position.get(worker_id, 0),
        )
        published, answers = self.memos.get(key, ({}, {}))
        if waiter_id in answers and model_matches(waiter, answers[waiter_id]):
            # Memoized: the same event at once, and nothing else changes.
            commands = self.apply(tick)
            assert commands == [ResumeWorker(worker_id, answers[waiter_id], False)]
            if kept is None:
                assert self.state == before
            return
        early = next(
            (
                (ev, target)
                for ev, target in self.unclaimed
                if target in (None, worker.step) and model_matches(waiter, ev)
            ),
            None,
        )
        if early is not None:
            commands = self.apply(tick)
            assert commands == [ResumeWorker(worker_id, early[0], False)]
            self.unclaimed.remove(early)
            self.memos[key] = (published, {**answers, waiter_id: early[0]})
            assert worker_id in self.state.workers
            return
        commands = self.apply(tick)
        self.waiters[worker_id] = waiter
        # Asked once per waiter id, and again only if the question changed.
        asked = question is not None and published.get(waiter_id) is not question
        if asked:
            self.memos[key] = ({**published, waiter_id: question}, answers)
        assert [c for c in commands if isinstance(c, Publish) and c.event is not IDLE] == (
            [Publish(question)] if asked else []
        )
        wait_timers = [
            c for c in commands if isinstance(c, ScheduleTimer) and c.timer_id.startswith("wait-")
        ]
        expected = [] if deadline is None else [ScheduleTimer(f"wait-{worker_id}", deadline)]
        assert wait_timers == expected
        assert worker_id not in self.state.workers

    @precondition(lambda self: bool(self.state.waiting))
    @rule(data=st.data())
    def abandon(self, data: st.DataObject) -> None:
        """The step's own code stops waiting: back to a slot, with no event."""
        worker_id = data.draw(st.sampled_from(sorted(self.state.waiting)), label="waiter")
        if not self.running:
            self.apply(WaitAbandoned(worker_id, self.now))
            return
        front = self.wake(worker_id, None, timed_out=False)
        commands = self.apply(WaitAbandoned(worker_id, self.now), front=front)
        self.check_resumed(commands, front)

    @precondition(lambda self: bool(queued_resumptions(self.state)))
    @rule(data=st.data())
    def abandon_queued(self, data: st.DataObject) -> None:
        """The step's own code stops a wait whose answer came and waits for a slot
        (the driver cannot know): nothing changes, the step goes on with it."""
        worker_id = data.draw(
            st.sampled_from(sorted(queued_resumptions(self.state))), label="resumption"
        )
        before = self.state
        commands = self.apply(WaitAbandoned(worker_id, self.now))
        assert self.state is before
        assert commands == []

    @precondition(lambda self: bool(self.armed))
    @rule(data=st.data())
    def fire_timer(self, data: st.DataObject) -> None:
        """A retry, wait or step timer comes due."""
        timer_id = data.draw(st.sampled_from(sorted(self.armed)), label="timer")
        before = self.state
        was_running = self.running
        self.now = max(self.now, self.armed.pop(timer_id))
        tick = TimerFired(timer_id, self.now)
        if not was_running:
            self.apply(tick)
            return
        prefix, _, number = timer_id.partition("-")
        worker_id = int(number)
        if prefix == "retry":
            retry = before.retries[timer_id]
            self.apply(tick, front=(retry.step, retry.delivery))
            assert timer_id not in self.state.retries
        elif prefix == "wait":
            assert before.waiting[worker_id].deadline is not None
            front = self.wake(worker_id, None, timed_out=True)
            commands = self.apply(tick, front=front)
            self.check_resumed(commands, front)
        else:
            assert prefix == "step"
            assert before.workers[worker_id].step == "b"
            commands = self.apply(tick)
            assert commands == [CancelWorker(worker_id)]
            assert self.state == before

    @rule(data=st.data())
    def fire_early_or_stale_timer(self, data: st.DataObject) -> None:
        """A timer fires before its deadline (it is scheduled again), or after it
        was cancelled or fired (the driver may have posted it already): nothing
        happens, except that an attempt whose step timer fired already is told
        again to stop.  Timer ids are reused by the waits of one attempt, so a
        late fire may find its id scheduled again with a later deadline."""
        early = sorted(
            timer_id
            for timer_id, deadline in self.armed.items()
            if not timer_id.startswith("retry-") and deadline > self.now
        )
        if self.now < TIMEOUT:
            early.append(RUN_TIMEOUT_TIMER)
        stale = sorted(self.ever_armed - self.armed.keys())
        if not early and not stale:
            return
        timer_id = data.draw(st.sampled_from([*early, *stale]), label="timer")
        before = self.state
        was_running = self.running
        commands = self.apply(TimerFired(timer_id, self.now))
        if not was_running:
            return
        if timer_id == RUN_TIMEOUT_TIMER:
            assert commands == [ScheduleTimer(RUN_TIMEOUT_TIMER, TIMEOUT)]
            assert self.state == before
        elif timer_id in early:
            assert commands == [ScheduleTimer(timer_id, self.armed[timer_id])]
            assert self.state == before
        elif timer_id.startswith("step-") and int(timer_id[5:]) in before.workers:
            worker_id = int(timer_id[5:])
            assert worker_id in self.interrupted
            assert commands == [CancelWorker(worker_id)]
            assert self.state == before
        else:
            assert self.state is before
            assert commands == []

    @precondition(may_end)
    @rule(
        how=st.sampled_from(["stop", "orphan", "fail", "time out", "cancel"]),
        late=st.sampled_from([0.0, 50.0]),
        caught=st.booleans(),
        data=st.data(),
    )
    def end(self, how: str, late: float, caught: bool, data: st.DataObject) -> None:
        """End the run (or try to: a caught failure may be recovered).

        One rule for every ending, so that once ``patience`` is spent the run
        does not end within a couple of ticks.
        """
        if how in ("stop", "orphan", "fail") and not self.state.workers:
            how = "cancel"
        if how == "stop":
            self._complete(self.draw_worker(data), S)
        elif how == "orphan":
            self._complete(self.draw_worker(data), Orphan)
        elif how == "fail":
            self._fail(self.draw_worker(data), None, late, caught)
        elif how == "time out":
            self._time_out(late)
        else:
            self._cancel()

    def _time_out(self, late: float) -> None:
        before = self.state
        was_running = self.running
        self.now = max(self.now, TIMEOUT) + late
        commands = self.apply(TimerFired(RUN_TIMEOUT_TIMER, self.now))
        if was_running:
            # Steps with unfinished work: executing, waiting for a retry or an event.
            busy = {w.step for w in [*before.workers.values(), *before.retries.values()]}
            busy.update(w.step for w in before.waiting.values())
            outcome = TimedOut(TIMEOUT, tuple(sorted(busy)))
            assert commands == [Finish(outcome)]
            assert self.state.status is RunStatus.TIMED_OUT
            assert self.state.outcome == outcome

    def _cancel(self) -> None:
        was_running = self.running
        commands = self.apply(CancelRequested(self.now))
        if was_running:
            assert commands == [Finish(Cancelled())]
            assert self.state.status is RunStatus.CANCELLED

    @precondition(has_workers)
    @rule(
        buffer_id=st.sampled_from(["x", "y"]),
        kind=event_types,
        expected=st.lists(event_types, max_size=3),
        data=st.data(),
    )
    def collect(
        self, buffer_id: str, kind: type, expected: list[type], data: st.DataObject
    ) -> None:
        worker_id = self.draw_worker(data)
        was_running = self.running
        event = kind()
        step = self.state.workers[worker_id].step
        commands = self.apply(EventCollected(worker_id, buffer_id, event, expected, self.now))
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
        not_executing = data.draw(
            st.sampled_from([*sorted(self.ever_started - before.workers.keys()), 10**6]),
            label="a worker not executing",
        )
        # Not drawn: a worker whose wait ended and waits for a slot (see ``abandon_queued``).
        not_waiting = data.draw(
            st.sampled_from(
                [
                    *sorted(
                        self.ever_started
                        - before.waiting.keys()
                        - queued_resumptions(before).keys()
                    ),
                    10**6,
                ]
            ),
            label="a worker not waiting",
        )
        candidates: list[Tick] = [
            RunStarted(A(), self.now),
            StepCompleted(not_executing, A()),
            StepFailed(not_executing, ValueError("unknown"), 1.0, self.now),
            EventCollected(not_executing, "x", A(), [A]),
            WaitStarted(not_executing, "w1", (H,)),
            WaitAbandoned(not_waiting),
            EventSent(A(), step="b"),
            EventSent(B(), step="a"),
            EventSent(C(), step="a"),
            EventSent(A(), step="nope"),
            EventSent(Orphan(), external=True),
            EventSent(A(), step="j"),
        ]
        # A waiter of the step takes an event its step does not accept.
        candidates = [
            tick
            for tick in candidates
            if not (
                type(tick) is EventSent
                and any(
                    w.step == tick.step and model_matches(w, tick.event)
                    for w in before.waiting.values()
                )
            )
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
        state = self.state
        per_step = Counter(w.step for w in state.workers.values())
        for name, spec in STEPS.items():
            lane = state.lanes[name]
            assert per_step[name] <= spec.num_workers, name
            # Waiting workers hold no slot.
            assert lane.running == per_step[name], name
            if self.running and lane.queue:
                # Work waits only while its step has no free worker.
                assert lane.running == spec.num_workers, name
        # A worker id is executing, waiting, or queued to resume: one at a time.
        resuming = list(queued_resumptions(state))
        ids = [*state.workers, *state.waiting, *resuming]
        assert len(ids) == len(set(ids)), ids

    @invariant()
    def finished_stays_finished(self) -> None:
        if self.outcome is not None:
            assert self.state.status.finished
            assert self.state.outcome is self.outcome

    @invariant()
    def waits_match_model(self) -> None:
        if self.running:
            assert list(self.state.waiting.items()) == list(self.waiters.items())
            assert list(self.state.unclaimed) == self.unclaimed
            memos = {
                key: (dict(memo.published), dict(memo.answers))
                for key, memo in self.state.memos.items()
                if memo.published or memo.answers  # collects are checked in collect()
            }
            assert memos == self.memos
            assert self.state.recoveries == self.recoveries

    @invariant()
    def joined_events_are_held_or_in_one_set(self) -> None:
        """Rule 10: no event routed to a join is lost, duplicated or misplaced."""
        state = self.state
        for name, slots in JOINS.items():
            held = state.joins[name].events.items() if name in state.joins else []
            if self.running:
                assert held == self.held[name], name
                assert model_bind(held, slots) is None, "a complete set was left held"
            places: Counter[int] = Counter(ev.serial for ev in held)
            sets = [d.bound for step, d in all_deliveries(state) if step == name]
            sets += [bound for (step, _), bound in self.done_sets.items() if step == name]
            for bound in sets:
                assert bound is not None
                assert all(isinstance(ev, t) for ev, t in zip(bound, slots, strict=True))
                places.update(ev.serial for ev in bound)
            assert places == Counter(self.joined[name]), name
        for step, delivery in all_deliveries(state):
            assert (delivery.bound is not None) == (step in JOINS), (step, delivery)
            if delivery.bound is not None:
                assert delivery.event in delivery.bound

    @invariant()
    def step_sends_enter_once(self) -> None:
        """Rule 9: every event an attempt sent entered the run once, however
        many times the attempt ran; the executing workers count their sends."""
        for attempt, sent in self.sends.items():
            for event, _ in sent:
                assert self.entered[event.serial] == 1, (attempt, event)
        if self.running:
            for worker_id, worker in self.state.workers.items():
                assert worker.sent == self.position.get(worker_id, 0), worker_id

    @invariant()
    def timers_match_model(self) -> None:
        if not self.running:
            return
        state = self.state
        by_kind: dict[str, dict[str, float]] = {"retry": {}, "wait": {}, "step": {}}
        for timer_id, deadline in self.armed.items():
            by_kind[timer_id.partition("-")[0]][timer_id] = deadline
        assert set(by_kind["retry"]) == set(state.retries)
        assert by_kind["wait"] == {
            f"wait-{i}": w.deadline for i, w in state.waiting.items() if w.deadline is not None
        }
        assert by_kind["step"] == {
            f"step-{i}": w.deadline
            for i, w in state.workers.items()
            if w.deadline is not None and i not in self.interrupted
        }
        for worker in state.workers.values():
            assert (worker.deadline is None) == (STEPS[worker.step].timeout is None)

    @invariant()
    def idle_flag(self) -> None:
        state = self.state
        if self.running:
            busy = (
                state.workers or state.retries or any(lane.queue for lane in state.lanes.values())
            )
            assert state.idle == (not busy and bool(state.waiting))

    def teardown(self) -> None:
        # Rule 8: the same ticks give the same commands and an equal state.
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
