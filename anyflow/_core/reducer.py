"""The reducer: ``reduce(state, tick) -> (state, commands)``.

Theory of operation
===================

A run is a fold of ticks.  The driver receives ticks (facts: an event arrived,
a step finished or failed, a timer fired, the caller cancelled), feeds each to
``reduce`` and executes the commands that come back (start a worker, publish an
event, schedule a timer, answer a ``collect_events`` call, finish).  Nothing
here does I/O, reads a clock or draws a random number, so the same ticks always
give the same states and commands: that is what replay, durability and fuzzing
stand on.

Rule 1: everything that decides where an event goes, when a step may run and
how a run ends lives in this file.  The driver only executes commands.

Rule 2: an event is delivered once to every step that accepts its type (or a
base class of it), or to the one step it was sent to; a step waiting in
``wait_for_event`` for an event like it takes it first (every such wait,
oldest first, as in llama-index-workflows), and then no step gets it.  Each
delivery is, at any moment, in exactly one place: a step's queue (new, or as
a woken wait's ``Resumption``), an executing worker, a waiter, a pending
retry, or done.

Rule 3: a step never has more than ``num_workers`` deliveries executing.  A
delivery waits in its step's FIFO queue for a free worker; a retried delivery
goes to the front of the queue.

Rule 4: a run that has finished stays finished: every later tick is ignored and
produces no command.  A tick that breaks the protocol (an unknown worker, an
event no step accepts) raises ``TickRejected`` and leaves the state untouched.

Rule 5: time is a tick field.  Deadlines are absolute numbers in the state;
timers are commands; a timer that fires early is rescheduled.  A retried
delivery remembers when its first attempt started (the first ``StepFailed``
tells) and when it last failed, of which the retry policy's elapsed time and
``ctx.retry_info()`` are made; a run resumed on a new clock (not
``recovered``) forgets those times.

Rule 6: a resume runs the interrupted attempts again, and their re-runs repeat
nothing that the run already holds.  Each delivery's ``WaitMemo`` remembers
what its attempts got (wait answers, ``collect_events`` results) and, for an
attempt a resume cut short, how many events it had sent: its re-run's first
that many ``send_event`` calls are dropped, the later ones are new.  A retry is
a new attempt: its sends are all delivered.

Rule 7: a join step (``StepSpec.slots``: a step with several event
parameters) is given its events a set at a time.  An event routed to it waits
in the step's join buffer (``RunState.joins``) until the buffer holds one event
for every slot; those events then leave the buffer together as one delivery
(``Delivery.bound``, in slot order), whose ``event`` is the one that completed
the set.  Slots are filled in order, each with the oldest held event that fits
it (an instance of its type), taking a younger one only when the older would
leave a later slot empty; so same-type slots bind in arrival order.  Events
beyond a set stay for the next one.  Everything else about the delivery (queue,
workers, retries, waits, catchers, resumes) is an ordinary delivery's, and a
held event is in exactly one place too: the buffer, or one delivery's set.

State fields: see ``state.RunState``.  Tick kinds: ``ticks.Tick``.  Commands:
``commands.Command``.  The hypothesis state machine in
``tests/core/test_reducer_stateful.py`` checks rules 2-7 as invariants.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ._pqueue import PQueue
from .commands import (
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
from .state import (
    RUN_TIMEOUT_TIMER,
    Broken,
    Cancelled,
    CollectBuffer,
    Completed,
    Delivery,
    Failed,
    JoinBuffer,
    Lane,
    Outcome,
    Resumption,
    RunState,
    RunStatus,
    TimedOut,
    Waiter,
    WaitMemo,
    Worker,
)
from .ticks import (
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
from .timers import Timer, timer_id, timer_of


class TickRejected(Exception):
    """A tick that the state machine cannot accept; the state is unchanged."""


class _Txn:
    """Scratch space for one ``reduce`` call, turned into the next state.

    Mappings are copied on first write only, so the previous state is never
    touched and a tick pays only for what it changes.
    """

    __slots__ = (
        "collections",
        "commands",
        "deadline",
        "idle",
        "joins",
        "lanes",
        "memos",
        "next_event_id",
        "next_worker_id",
        "now",
        "outcome",
        "recoveries",
        "retries",
        "spec",
        "state",
        "status",
        "unclaimed",
        "waiting",
        "workers",
    )

    def __init__(self, state: RunState, now: float) -> None:
        self.state = state
        self.spec = state.spec
        self.now = now
        self.status = state.status
        self.lanes = state.lanes
        self.workers = state.workers
        self.waiting = state.waiting
        self.memos = state.memos
        self.unclaimed = state.unclaimed
        self.recoveries = state.recoveries
        self.idle = state.idle
        self.retries = state.retries
        self.collections = state.collections
        self.joins = state.joins
        self.next_event_id = state.next_event_id
        self.next_worker_id = state.next_worker_id
        self.deadline = state.deadline
        self.outcome = state.outcome
        self.commands: list[Command] = []

    def done(self) -> tuple[RunState, list[Command]]:
        if self.status is RunStatus.RUNNING and (self.idle or self.waiting):
            self._update_idle()
        # Positional, in RunState's field order: this runs once per tick, and
        # keywords cost a third more (tests/core/test_txn.py checks the order).
        state = RunState(
            self.spec,
            self.status,
            self.lanes,
            self.workers,
            self.waiting,
            self.memos,
            self.unclaimed,
            self.recoveries,
            self.idle,
            self.retries,
            self.collections,
            self.next_event_id,
            self.next_worker_id,
            self.deadline,
            self.outcome,
            self.joins,
        )
        return state, self.commands

    def _update_idle(self) -> None:
        idle = (
            not self.workers
            and bool(self.waiting)
            and not self.retries
            and not any(lane.queue for lane in self.lanes.values())
        )
        if idle and not self.idle and self.spec.idle_event is not None:
            self.commands.append(Publish(self.spec.idle_event))
        self.idle = idle

    # Copy-on-write access to the mappings.

    def set_lane(self, name: str, lane: Lane) -> None:
        if self.lanes is self.state.lanes:
            self.lanes = dict(self.lanes)
        self.lanes[name] = lane  # type: ignore[index]

    def _own_workers(self) -> dict[int, Worker]:
        if self.workers is self.state.workers:
            self.workers = dict(self.workers)
        return self.workers  # type: ignore[return-value]

    def _own_waiting(self) -> dict[int, Waiter]:
        if self.waiting is self.state.waiting:
            self.waiting = dict(self.waiting)
        return self.waiting  # type: ignore[return-value]

    def set_memo(self, key: tuple[str, int], memo: WaitMemo | None) -> None:
        if self.memos is self.state.memos:
            self.memos = dict(self.memos)
        if memo is None:
            self.memos.pop(key, None)  # type: ignore[attr-defined]
        else:
            self.memos[key] = memo  # type: ignore[index]

    # Moving work between queues, workers and waiters.

    def deliver(self, event: Any, steps: tuple[str, ...]) -> None:
        event_id = self.next_event_id
        self.next_event_id = event_id + 1
        delivery = Delivery(event_id, event)
        for name in steps:
            spec = self.spec.steps[name]
            item = delivery
            if spec.slots:
                bound = self.join(name, spec.slots, event, exact=spec.exact)
                if bound is None:
                    continue  # held until its set is complete (rule 7)
                item = Delivery(event_id, event, bound=bound)
            lane = self.lanes[name]
            if not lane.queue and lane.running < spec.num_workers:
                self.start(name, lane, item)
            else:
                self.set_lane(name, Lane(lane.queue.push(item), lane.running))

    def join(
        self, name: str, slots: tuple[type, ...], event: Any, *, exact: bool = False
    ) -> tuple[Any, ...] | None:
        """Hold ``event`` in join step ``name``'s buffer; the set it completes,
        taken out of the buffer, or None (rule 7).  ``exact``: an event fits
        only a slot of its own class (``StepSpec.exact``)."""
        fits_slot = _is_exactly if exact else isinstance
        held = self.joins.get(name, _NO_JOIN)
        counts = held.fits or (0,) * len(slots)
        fits = tuple(
            n + 1 if fits_slot(event, t) else n for n, t in zip(counts, slots, strict=True)
        )
        events = held.events.add(event)
        bound: tuple[Any, ...] | None = None
        # Cheap test first: a set needs, for each slot, as many candidates as
        # there are slots of its type.
        if all(n >= slots.count(t) for n, t in zip(fits, slots, strict=True)):
            bound, rest = _bind(events.items(), slots, fits_slot)
            if bound is not None:
                events = CollectBuffer.of(rest)
                fits = tuple(
                    n - sum(fits_slot(ev, t) for ev in bound)
                    for n, t in zip(fits, slots, strict=True)
                )
        if self.joins is self.state.joins:
            self.joins = dict(self.joins)
        if events.total:
            self.joins[name] = JoinBuffer(events, fits)  # type: ignore[index]
        else:
            self.joins.pop(name, None)  # type: ignore[attr-defined]
        return bound

    def start(self, name: str, lane: Lane, delivery: Delivery) -> None:
        worker_id = self.next_worker_id
        self.next_worker_id = worker_id + 1
        self.commands.append(StartWorker(worker_id, name, delivery))
        deadline = self._arm_step_timer(worker_id, self.spec.steps[name].timeout)
        self._own_workers()[worker_id] = Worker(name, delivery, deadline)
        self.set_lane(name, Lane(lane.queue, lane.running + 1))

    def resume(self, name: str, lane: Lane, item: Resumption) -> None:
        self.commands.append(ResumeWorker(item.worker_id, item.event, item.timed_out))
        budget = item.budget if item.budget is not None else self.spec.steps[name].timeout
        deadline = self._arm_step_timer(item.worker_id, budget)
        self._own_workers()[item.worker_id] = Worker(name, item.delivery, deadline, item.sent)
        self.set_lane(name, Lane(lane.queue, lane.running + 1))

    def _arm_step_timer(self, worker_id: int, seconds: float | None) -> float | None:
        if seconds is None:
            return None
        deadline = self.now + seconds
        self.commands.append(ScheduleTimer(timer_id(Timer.STEP, worker_id), deadline))
        return deadline

    def pump(self, name: str) -> None:
        """Start queued work of ``name`` while it has free worker slots."""
        lane = self.lanes[name]
        limit = self.spec.steps[name].num_workers
        while lane.queue and lane.running < limit:
            item, queue = lane.queue.pop()
            lane = Lane(queue, lane.running)
            if type(item) is Resumption:
                self.resume(name, lane, item)
            else:
                self.start(name, lane, item)  # type: ignore[arg-type]
            lane = self.lanes[name]

    def release(self, worker_id: int) -> Worker:
        """Take a worker off its slot (it finished, failed or started waiting)."""
        worker = _executing(self.workers, worker_id)
        del self._own_workers()[worker_id]
        lane = self.lanes[worker.step]
        self.set_lane(worker.step, Lane(lane.queue, lane.running - 1))
        if self.spec.steps[worker.step].timeout is not None:
            self.commands.append(CancelTimer(timer_id(Timer.STEP, worker_id)))
        return worker

    def wake(self, worker_id: int, event: Any, timed_out: bool, answered: bool = True) -> None:
        """End a wait: the step goes on when its step has a free slot."""
        waiter = self._own_waiting().pop(worker_id)
        if waiter.deadline is not None and not timed_out:
            self.commands.append(CancelTimer(timer_id(Timer.WAIT, worker_id)))
        if answered and not timed_out:
            key = (waiter.step, waiter.delivery.event_id)
            memo = self.memos.get(key, _NO_MEMO)
            self.set_memo(key, memo.answered(waiter.waiter_id, event))
        item = Resumption(worker_id, waiter.delivery, event, timed_out, waiter.budget, waiter.sent)
        lane = self.lanes[waiter.step]
        if lane.running < self.spec.steps[waiter.step].num_workers:
            self.resume(waiter.step, lane, item)
        else:
            self.set_lane(waiter.step, Lane(_after_resumptions(lane.queue, item), lane.running))

    def repeated_send(self, worker_id: int) -> bool:
        """Count a send of ``worker_id``'s attempt; whether an earlier execution
        of that attempt made this send already (the attempt runs again after a
        resume, and the memo says how many events it had sent)."""
        worker: Worker | Waiter | None = self.workers.get(worker_id)
        if worker is not None:
            self._own_workers()[worker_id] = Worker(
                worker.step, worker.delivery, worker.deadline, worker.sent + 1
            )
        else:
            # A send while the step waits (from a task of its own) counts on
            # its waiter.  One made after its wait ended, while it waits for a
            # slot, or by a stray task of a finished step, is delivered and
            # counted nowhere: a count that falls short only lets a re-run
            # deliver something again, it never drops a new send.
            worker = self.waiting.get(worker_id)
            if worker is None:
                return False
            self._own_waiting()[worker_id] = attrs.evolve(worker, sent=worker.sent + 1)
        if not self.memos:
            return False
        memo = self.memos.get((worker.step, worker.delivery.event_id))
        return memo is not None and worker.sent < memo.sent_before(worker.delivery.attempt)

    def take_waiter(self, event: Any, step: str | None) -> bool:
        """Give ``event`` to every waiter it matches, oldest first (as
        llama-index-workflows does); whether any took it."""
        takers = [
            worker_id
            for worker_id, waiter in self.waiting.items()
            if (step is None or waiter.step == step) and waiter.matches(event)
        ]
        for worker_id in takers:
            self.wake(worker_id, event, timed_out=False)
        return bool(takers)

    def finish(self, outcome: Outcome) -> None:
        self.status = outcome.status
        self.outcome = outcome
        self.commands.append(Finish(outcome))

    def route(self, event: Any) -> tuple[str, ...]:
        return self.spec.route(type(event))


_NO_MEMO = WaitMemo()
_NO_JOIN = JoinBuffer()


def _is_exactly(event: Any, cls: type) -> bool:
    return type(event) is cls


def _bind(
    events: list[Any],
    slots: tuple[type, ...],
    fits_slot: Callable[[Any, type], bool] = isinstance,
) -> tuple[tuple[Any, ...] | None, list[Any]]:
    """One event per slot out of ``events`` (oldest first), and the rest; or
    (None, ``events``) if some slot cannot be filled (``fits_slot(event, cls)``
    says whether an event may fill a slot of ``cls``).

    Slot by slot, the oldest unused event that fits; when a later slot is left
    empty, the previous slot tries its next candidate (a subclass instance
    taken by a base-class slot may be the only one a later slot can take).
    """
    used = [False] * len(events)
    chosen: list[int] = []

    def fill(slot: int) -> bool:
        if slot == len(slots):
            return True
        wanted = slots[slot]
        for index, event in enumerate(events):
            if not used[index] and fits_slot(event, wanted):
                used[index] = True
                chosen.append(index)
                if fill(slot + 1):
                    return True
                used[index] = False
                chosen.pop()
        return False

    if not fill(0):
        return None, events
    return tuple(events[i] for i in chosen), [ev for i, ev in enumerate(events) if not used[i]]


def _after_resumptions(
    queue: PQueue[Delivery | Resumption], item: Resumption
) -> PQueue[Delivery | Resumption]:
    """``queue`` with ``item`` after the woken waits already at its front and
    before every new delivery: woken waits go on in the order they were woken."""
    woken: list[Delivery | Resumption] = []
    while queue:
        head, rest = queue.pop()
        if type(head) is not Resumption:
            break
        woken.append(head)
        queue = rest
    queue = queue.push_front(item)
    for earlier in reversed(woken):
        queue = queue.push_front(earlier)
    return queue


def _require_running(state: RunState, tick: Tick) -> None:
    if state.status is RunStatus.NOT_STARTED:
        raise TickRejected(f"{type(tick).__name__} before RunStarted: the run has not started")


def _on_run_started(state: RunState, tick: RunStarted) -> tuple[RunState, list[Command]]:
    if state.status is not RunStatus.NOT_STARTED:
        raise TickRejected("RunStarted twice: a run starts once")
    txn = _Txn(state, tick.now)
    txn.status = RunStatus.RUNNING
    steps = txn.route(tick.start_event)
    if not steps:
        txn.finish(
            Broken(None, f"no step accepts the start event {type(tick.start_event).__name__}"),
        )
        return txn.done()
    if state.spec.timeout is not None:
        txn.deadline = tick.now + state.spec.timeout
        txn.commands.append(ScheduleTimer(RUN_TIMEOUT_TIMER, txn.deadline))
    txn.deliver(tick.start_event, steps)
    return txn.done()


def _restored(state: RunState, recovered: bool) -> RunState:
    """``state`` with nothing executing: a resumed run starts over every attempt
    that was executing or waiting, from the front of its step's queue (its
    completed waits are remembered through the memos, and so is how many
    events it had sent, which its re-run does not send again).

    A ``recovered`` run goes on with the clock and the stream it had, so its
    pending retries keep their deadlines and its questions, already on the
    stream, are not asked again.  Any other resumed run (a saved context in a
    new process) has a new clock and a new stream: pending retries are due at
    once and questions are asked again.
    """
    lanes = {name: _without_resumptions(lane) for name, lane in state.lanes.items()}
    unfinished: list[Worker | Waiter] = [*state.workers.values(), *state.waiting.values()]
    if not recovered:
        unfinished += state.retries.values()
    for item in sorted(unfinished, key=lambda w: w.delivery.event_id, reverse=True):
        lane = lanes[item.step]
        lanes[item.step] = Lane(lane.queue.push_front(item.delivery), 0)
    if not recovered:
        lanes = {name: _on_a_new_clock(lane) for name, lane in lanes.items()}
    if recovered:
        memos = dict(state.memos)
        for waiter in state.waiting.values():
            if waiter.deadline is not None:
                key = (waiter.step, waiter.delivery.event_id)
                memo = memos.get(key, _NO_MEMO)
                memos[key] = memo.cut_short(waiter.waiter_id, waiter.deadline)
    else:
        memos = {
            key: WaitMemo(answers=memo.answers, collected=memo.collected, sent=memo.sent)
            for key, memo in state.memos.items()
        }
    # What the cut-short attempts sent is delivered: their re-runs skip it.
    for step, delivery, sent in _sends(state):
        key = (step, delivery.event_id)
        memos[key] = memos.get(key, _NO_MEMO).sends(delivery.attempt, sent)
    return attrs.evolve(
        state,
        status=RunStatus.RUNNING,
        lanes={name: Lane(lane.queue, 0) for name, lane in lanes.items()},
        workers={},
        waiting={},
        memos=memos,
        idle=False,
        retries=state.retries if recovered else {},
        deadline=state.deadline if recovered else None,
        outcome=None,
    )


def _sends(state: RunState) -> list[tuple[str, Delivery, int]]:
    """(step, delivery, events sent) of the attempts a resume cuts short that
    sent events: executing, waiting, or woken and queued for a slot."""
    unfinished: list[Worker | Waiter] = [*state.workers.values(), *state.waiting.values()]
    found = [(w.step, w.delivery, w.sent) for w in unfinished if w.sent]
    for step, lane in state.lanes.items():
        for item in lane.queue:
            if type(item) is Resumption and item.sent:
                found.append((step, item.delivery, item.sent))
    return found


def _without_resumptions(lane: Lane) -> Lane:
    """``lane`` with each woken wait that was queued for a free slot turned back
    into its delivery, in its place: its worker is gone, so its attempt starts
    over (and finds its answer in the wait memo)."""
    if not any(type(item) is Resumption for item in lane.queue):
        return lane
    queue: PQueue[Delivery | Resumption] = PQueue()
    for item in lane.queue:
        queue = queue.push(item.delivery if type(item) is Resumption else item)
    return Lane(queue, lane.running)


def _on_a_new_clock(lane: Lane) -> Lane:
    """``lane`` with the tick times its deliveries hold forgotten: a run resumed
    in a new process has a new clock, on which they mean nothing, so a
    delivery's elapsed time counts again from its next attempt."""
    if not any(_timed(item) for item in lane.queue):
        return lane
    queue: PQueue[Delivery | Resumption] = PQueue()
    for item in lane.queue:
        if _timed(item):
            assert type(item) is Delivery  # _restored queued no Resumption
            item = attrs.evolve(
                item, first_started_at=None, first_failed_at=None, last_failed_at=None
            )
        queue = queue.push(item)
    return Lane(queue, lane.running)


def _timed(item: Delivery | Resumption) -> bool:
    delivery = item.delivery if type(item) is Resumption else item
    assert type(delivery) is Delivery
    return (
        delivery.first_started_at is not None
        or delivery.first_failed_at is not None
        or delivery.last_failed_at is not None
    )


def _on_run_resumed(state: RunState, tick: RunResumed) -> tuple[RunState, list[Command]]:
    if state.status is not RunStatus.RUNNING:
        raise TickRejected(f"only a running run can be resumed, not a {state.status.value} one")
    txn = _Txn(_restored(state, tick.recovered), tick.now)
    if state.spec.timeout is not None:
        if txn.deadline is None:
            txn.deadline = tick.now + state.spec.timeout
        txn.commands.append(ScheduleTimer(RUN_TIMEOUT_TIMER, txn.deadline))
    for retry_timer, retry in txn.retries.items():
        assert retry.deadline is not None
        txn.commands.append(ScheduleTimer(retry_timer, retry.deadline))
    for name in state.spec.steps:
        txn.pump(name)
    return txn.done()


def _on_event_sent(state: RunState, tick: EventSent) -> tuple[RunState, list[Command]]:
    _require_running(state, tick)
    event = tick.event
    event_type = type(event)
    if tick.step is None:
        steps = state.spec.route(event_type)
    else:
        spec = state.spec.steps.get(tick.step)
        if spec is None:
            raise TickRejected(f"no step {tick.step!r} in this workflow")
        steps = (tick.step,) if spec.takes(event_type) else ()
    txn = _Txn(state, tick.now)
    if tick.worker_id is not None and txn.repeated_send(tick.worker_id):
        # A re-run of the attempt that sent it already (rule 6): delivered then.
        return txn.done()
    # A step waiting for this event has asked for it: it goes first.
    if state.waiting and txn.take_waiter(event, tick.step):
        return txn.done()
    if steps:
        txn.deliver(event, steps)
    elif isinstance(event, state.spec.buffer_types):
        txn.unclaimed = (*state.unclaimed, (event, tick.step))
    elif tick.step is None:
        raise TickRejected(f"no step accepts {event_type.__name__}")
    else:
        raise TickRejected(f"step {tick.step!r} does not accept {event_type.__name__}")
    return txn.done()


def _on_step_completed(state: RunState, tick: StepCompleted) -> tuple[RunState, list[Command]]:
    _require_running(state, tick)
    txn = _Txn(state, tick.now)
    worker = txn.release(tick.worker_id)
    if state.memos:
        txn.set_memo((worker.step, worker.delivery.event_id), None)
    output = tick.output
    if output is not None:
        if isinstance(output, state.spec.stop_types):
            txn.finish(Completed(output))
            return txn.done()
        published = isinstance(output, state.spec.publish_types)
        if published:
            txn.commands.append(Publish(output))
        steps = txn.route(output)
        if steps:
            txn.deliver(output, steps)
        elif not published:
            txn.finish(
                Broken(
                    worker.step,
                    f"step {worker.step!r} returned {type(output).__name__}, which no step "
                    "accepts; add a step that accepts it, or fix the step's return annotation",
                ),
            )
            return txn.done()
    txn.pump(worker.step)
    return txn.done()


def _on_step_failed(state: RunState, tick: StepFailed) -> tuple[RunState, list[Command]]:
    _require_running(state, tick)
    txn = _Txn(state, tick.now)
    worker = txn.release(tick.worker_id)
    delivery = worker.delivery
    if tick.retry_delay is None:
        if state.memos:
            txn.set_memo((worker.step, delivery.event_id), None)
        catcher = state.spec.catchers.get(worker.step)
        if catcher is not None and tick.failure_event is not None:
            name, limit = catcher
            used = state.recoveries.get(name, 0)
            if used < limit:
                txn.recoveries = {**state.recoveries, name: used + 1}
                txn.deliver(tick.failure_event, (name,))
                txn.pump(worker.step)
                return txn.done()
        txn.finish(Failed(worker.step, tick.error, delivery.attempt))
        return txn.done()
    retry_timer = timer_id(Timer.RETRY, tick.worker_id)
    deadline = tick.now + tick.retry_delay
    first_failed_at = tick.now if delivery.first_failed_at is None else delivery.first_failed_at
    first_started_at = delivery.first_started_at
    if first_started_at is None:  # the first failure: its attempt was the first
        first_started_at = tick.started_at
    txn.retries = {
        **state.retries,
        retry_timer: Worker(
            worker.step,
            attrs.evolve(
                delivery,
                attempt=delivery.attempt + 1,
                last_error=tick.error,
                first_failed_at=first_failed_at,
                first_started_at=first_started_at,
                last_failed_at=tick.now,
            ),
            deadline,
        ),
    }
    txn.commands.append(ScheduleTimer(retry_timer, deadline))
    txn.pump(worker.step)
    return txn.done()


def _on_timer_fired(state: RunState, tick: TimerFired) -> tuple[RunState, list[Command]]:
    _require_running(state, tick)
    txn = _Txn(state, tick.now)
    # Timer ids are reused by the waits and resumptions of one attempt, so a
    # late fire is checked against the deadline in the state (rule 5).
    match timer_of(tick.timer_id):
        case (Timer.RUN_TIMEOUT, _):
            deadline = state.deadline
            if deadline is None:
                return state, []
            if tick.now < deadline:
                txn.commands.append(ScheduleTimer(RUN_TIMEOUT_TIMER, deadline))
            else:
                assert state.spec.timeout is not None
                txn.finish(TimedOut(state.spec.timeout, state.active_steps()))
            return txn.done()
        case (Timer.WAIT, int(worker_id)):
            waiter = state.waiting.get(worker_id)
            if waiter is None or waiter.deadline is None:
                return state, []  # the event came first
            if tick.now < waiter.deadline:
                txn.commands.append(ScheduleTimer(tick.timer_id, waiter.deadline))
            else:
                txn.wake(worker_id, None, timed_out=True)
            return txn.done()
        case (Timer.STEP, int(worker_id)):
            worker = state.workers.get(worker_id)
            if worker is None or worker.deadline is None:
                return state, []  # it finished (or started waiting) first
            if tick.now < worker.deadline:
                txn.commands.append(ScheduleTimer(tick.timer_id, worker.deadline))
            else:
                txn.commands.append(CancelWorker(worker_id))
            return txn.done()
    retry = state.retries.get(tick.timer_id)  # a retry's timer, restored or not
    if retry is None:
        return state, []  # a timer cancelled after it fired: nothing to do
    retries = dict(state.retries)
    del retries[tick.timer_id]
    txn.retries = retries
    lane = txn.lanes[retry.step]
    txn.set_lane(retry.step, Lane(lane.queue.push_front(retry.delivery), lane.running))
    txn.pump(retry.step)
    return txn.done()


def _on_cancel_requested(state: RunState, tick: CancelRequested) -> tuple[RunState, list[Command]]:
    _require_running(state, tick)
    txn = _Txn(state, tick.now)
    txn.finish(Cancelled())
    return txn.done()


def _executing(workers: Mapping[int, Worker], worker_id: int) -> Worker:
    worker = workers.get(worker_id)
    if worker is None:
        raise TickRejected(f"no worker {worker_id} is executing in this run")
    return worker


def _on_wait_started(state: RunState, tick: WaitStarted) -> tuple[RunState, list[Command]]:
    _require_running(state, tick)
    worker = _executing(state.workers, tick.worker_id)
    txn = _Txn(state, tick.now)
    key = (worker.step, worker.delivery.event_id)
    memo = state.memos.get(key, _NO_MEMO)
    deadline = None if tick.timeout is None else tick.now + tick.timeout
    if tick.waiter_id in memo.deadlines:
        # The same wait, cut short by a crash: its deadline stands.
        if deadline is not None:
            deadline = memo.deadlines[tick.waiter_id]
        memo = memo.resumed(tick.waiter_id)
        txn.set_memo(key, memo)
    waiter = Waiter(
        worker.step,
        worker.delivery,
        tick.waiter_id,
        tick.event_types,
        tick.requirements,
        deadline=deadline,
        budget=None if worker.deadline is None else max(worker.deadline - tick.now, 0.0),
        sent=worker.sent,
    )
    # A wait this delivery already completed (before a retry or a resume)
    # returns the same event at once.  A remembered answer that does not fit
    # this wait was for another wait under the same id: this one waits anew.
    answer = memo.answers.get(tick.waiter_id, _NO_MEMO)
    if answer is not _NO_MEMO and waiter.matches(answer):
        txn.commands.append(ResumeWorker(tick.worker_id, answer, False))
        return txn.done()
    # An event that arrived before anyone waited for it.
    for index, (event, target) in enumerate(state.unclaimed):
        if (target is None or target == worker.step) and waiter.matches(event):
            txn.unclaimed = state.unclaimed[:index] + state.unclaimed[index + 1 :]
            txn.set_memo(key, memo.answered(tick.waiter_id, event))
            txn.commands.append(ResumeWorker(tick.worker_id, event, False))
            return txn.done()
    txn.release(tick.worker_id)
    txn._own_waiting()[tick.worker_id] = waiter
    question = tick.waiter_event
    if question is not None and memo.published.get(tick.waiter_id, _NO_MEMO) != question:
        txn.commands.append(Publish(question))
        txn.set_memo(key, memo.asked(tick.waiter_id, question))
    if deadline is not None:
        txn.commands.append(ScheduleTimer(timer_id(Timer.WAIT, tick.worker_id), deadline))
    txn.pump(worker.step)
    return txn.done()


def _on_wait_abandoned(state: RunState, tick: WaitAbandoned) -> tuple[RunState, list[Command]]:
    _require_running(state, tick)
    if tick.worker_id not in state.waiting:
        if any(
            type(item) is Resumption and item.worker_id == tick.worker_id
            for lane in state.lanes.values()
            for item in lane.queue
        ):
            return state, []  # its answer came and waits for a slot: it goes on then
        raise TickRejected(f"no worker {tick.worker_id} is waiting in this run")
    txn = _Txn(state, tick.now)
    txn.wake(tick.worker_id, None, timed_out=False, answered=False)
    return txn.done()


def _on_event_collected(state: RunState, tick: EventCollected) -> tuple[RunState, list[Command]]:
    _require_running(state, tick)
    worker = _executing(state.workers, tick.worker_id)
    expected = tick.expected
    if not expected:
        return state, [ReturnCollected(tick.worker_id, ())]
    memo_key = (worker.step, worker.delivery.event_id)
    memo = state.memos.get(memo_key, _NO_MEMO)
    if memo.collected:
        done, result = memo.collected_before(tick.buffer_id, tick.event)
        if done:
            # A re-run of this delivery (a retry, or after a crash): its event
            # is in the buffer already, or completed it; the same answer again.
            return state, [ReturnCollected(tick.worker_id, result)]
    key = (worker.step, tick.buffer_id)
    buffer = state.collections.get(key, _EMPTY_BUFFER).add(tick.event)
    events: tuple[Any, ...] | None = None
    # Cheap test first: a set of n events cannot be complete with fewer than n
    # buffered, so a fan-in of n costs O(1) per event until the last one.
    if buffer.total >= len(expected):
        events, buffer = _take(buffer, expected)
    collections = dict(state.collections)
    if buffer.total:
        collections[key] = buffer
    else:
        collections.pop(key, None)
    txn = _Txn(state, tick.now)
    txn.collections = collections
    txn.set_memo(memo_key, memo.collects(tick.buffer_id, tick.event, events))
    txn.commands.append(ReturnCollected(tick.worker_id, events))
    return txn.done()


_EMPTY_BUFFER = CollectBuffer()


def _take(buffer: CollectBuffer, expected: Any) -> tuple[tuple[Any, ...] | None, CollectBuffer]:
    """Take one buffered event of each expected type (exact type, oldest first)."""
    items = buffer.items()
    need = Counter(expected)
    have = Counter(type(ev) for ev in items)
    if any(have[t] < n for t, n in need.items()):
        return None, buffer
    positions: dict[type, list[int]] = {}
    for index, ev in enumerate(items):
        if need.get(type(ev), 0) > len(positions.setdefault(type(ev), [])):
            positions[type(ev)].append(index)
    cursor = dict.fromkeys(positions, 0)
    used: set[int] = set()
    taken = []
    for t in expected:
        index = positions[t][cursor[t]]
        cursor[t] += 1
        used.add(index)
        taken.append(items[index])
    rest = [ev for index, ev in enumerate(items) if index not in used]
    return tuple(taken), CollectBuffer.of(rest)


_Handler = Callable[[RunState, Any], tuple[RunState, list[Command]]]

_HANDLERS: dict[type, _Handler] = {
    RunStarted: _on_run_started,
    RunResumed: _on_run_resumed,
    EventSent: _on_event_sent,
    StepCompleted: _on_step_completed,
    StepFailed: _on_step_failed,
    TimerFired: _on_timer_fired,
    CancelRequested: _on_cancel_requested,
    EventCollected: _on_event_collected,
    WaitStarted: _on_wait_started,
    WaitAbandoned: _on_wait_abandoned,
}


def reduce(state: RunState, tick: Tick) -> tuple[RunState, list[Command]]:
    """Apply ``tick`` to ``state``; return the next state and the commands to run.

    :raises TickRejected: if the tick breaks the protocol; ``state`` is unchanged.
    """
    if state.status.finished:
        return state, []
    return _HANDLERS[type(tick)](state, tick)
