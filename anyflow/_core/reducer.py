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
base class of it), or to the one step it was sent to.  Each delivery is, at any
moment, in exactly one place: a step's queue, a worker, a pending retry, or
done.

Rule 3: a step never has more than ``num_workers`` deliveries executing.  A
delivery waits in its step's FIFO queue for a free worker; a retried delivery
goes to the front of the queue.

Rule 4: a run that has finished stays finished: every later tick is ignored and
produces no command.  A tick that breaks the protocol (an unknown worker, an
event no step accepts) raises ``TickRejected`` and leaves the state untouched.

Rule 5: time is a tick field.  Deadlines are absolute numbers in the state;
timers are commands; a timer that fires early is rescheduled.

State fields: see ``state.RunState``.  Tick kinds: ``ticks.Tick``.  Commands:
``commands.Command``.  The hypothesis state machine in
``tests/core/test_reducer_stateful.py`` checks rules 2-4 as invariants.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from .commands import (
    Command,
    Finish,
    Publish,
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
    Lane,
    Outcome,
    RunState,
    RunStatus,
    TimedOut,
    Worker,
)
from .ticks import (
    CancelRequested,
    EventCollected,
    EventSent,
    RunStarted,
    StepCompleted,
    StepFailed,
    Tick,
    TimerFired,
)


class TickRejected(Exception):
    """A tick that the state machine cannot accept; the state is unchanged."""


class _Txn:
    """Scratch space for one ``reduce`` call, turned into the next state.

    The mappings are shallow copies of the previous state's, so the previous
    state is never touched; everything not copied is shared.
    """

    __slots__ = (
        "collections",
        "commands",
        "deadline",
        "lanes",
        "next_event_id",
        "next_worker_id",
        "outcome",
        "retries",
        "spec",
        "state",
        "status",
        "workers",
    )

    def __init__(self, state: RunState) -> None:
        self.state = state
        self.spec = state.spec
        self.status = state.status
        self.lanes = dict(state.lanes)
        self.workers = dict(state.workers)
        self.retries = state.retries
        self.collections = state.collections
        self.next_event_id = state.next_event_id
        self.next_worker_id = state.next_worker_id
        self.deadline = state.deadline
        self.outcome = state.outcome
        self.commands: list[Command] = []

    def done(self) -> tuple[RunState, list[Command]]:
        return (
            RunState(
                self.spec,
                self.status,
                self.lanes,
                self.workers,
                self.retries,
                self.collections,
                self.next_event_id,
                self.next_worker_id,
                self.deadline,
                self.outcome,
            ),
            self.commands,
        )

    def deliver(self, event: Any, steps: tuple[str, ...]) -> None:
        event_id = self.next_event_id
        self.next_event_id = event_id + 1
        delivery = Delivery(event_id, event)
        for name in steps:
            lane = self.lanes[name]
            if not lane.queue and lane.running < self.spec.steps[name].num_workers:
                self.start(name, lane, delivery)
            else:
                self.lanes[name] = Lane(lane.queue.push(delivery), lane.running)

    def start(self, name: str, lane: Lane, delivery: Delivery) -> None:
        worker_id = self.next_worker_id
        self.next_worker_id = worker_id + 1
        self.workers[worker_id] = Worker(name, delivery)
        self.lanes[name] = Lane(lane.queue, lane.running + 1)
        self.commands.append(StartWorker(worker_id, name, delivery))

    def pump(self, name: str) -> None:
        """Start queued deliveries of ``name`` while it has free workers."""
        lane = self.lanes[name]
        limit = self.spec.steps[name].num_workers
        while lane.queue and lane.running < limit:
            delivery, queue = lane.queue.pop()
            lane = Lane(queue, lane.running)
            self.start(name, lane, delivery)
            lane = self.lanes[name]

    def release(self, worker_id: int) -> Worker:
        try:
            worker = self.workers.pop(worker_id)
        except KeyError:
            raise TickRejected(f"no worker {worker_id} is executing in this run") from None
        lane = self.lanes[worker.step]
        self.lanes[worker.step] = Lane(lane.queue, lane.running - 1)
        return worker

    def finish(self, status: RunStatus, outcome: Outcome) -> None:
        self.status = status
        self.outcome = outcome
        self.commands.append(Finish(outcome))

    def route(self, event: Any) -> tuple[str, ...]:
        return self.spec.route(type(event))


def _require_running(state: RunState, tick: Tick) -> None:
    if state.status is RunStatus.NOT_STARTED:
        raise TickRejected(f"{type(tick).__name__} before RunStarted: the run has not started")


def _on_run_started(state: RunState, tick: RunStarted) -> tuple[RunState, list[Command]]:
    if state.status is not RunStatus.NOT_STARTED:
        raise TickRejected("RunStarted twice: a run starts once")
    txn = _Txn(state)
    txn.status = RunStatus.RUNNING
    steps = txn.route(tick.start_event)
    if not steps:
        txn.finish(
            RunStatus.FAILED,
            Broken(None, f"no step accepts the start event {type(tick.start_event).__name__}"),
        )
        return txn.done()
    if state.spec.timeout is not None:
        txn.deadline = tick.now + state.spec.timeout
        txn.commands.append(ScheduleTimer(RUN_TIMEOUT_TIMER, txn.deadline))
    txn.deliver(tick.start_event, steps)
    return txn.done()


def _on_event_sent(state: RunState, tick: EventSent) -> tuple[RunState, list[Command]]:
    _require_running(state, tick)
    event_type = type(tick.event)
    if tick.step is None:
        steps = state.spec.route(event_type)
        if not steps:
            raise TickRejected(f"no step accepts {event_type.__name__}")
    else:
        spec = state.spec.steps.get(tick.step)
        if spec is None or not issubclass(event_type, spec.accepts):
            raise TickRejected(f"step {tick.step!r} does not accept {event_type.__name__}")
        steps = (tick.step,)
    txn = _Txn(state)
    txn.deliver(tick.event, steps)
    return txn.done()


def _on_step_completed(state: RunState, tick: StepCompleted) -> tuple[RunState, list[Command]]:
    _require_running(state, tick)
    txn = _Txn(state)
    worker = txn.release(tick.worker_id)
    output = tick.output
    if output is not None:
        if isinstance(output, state.spec.stop_types):
            txn.finish(RunStatus.COMPLETED, Completed(output))
            return txn.done()
        published = isinstance(output, state.spec.publish_types)
        if published:
            txn.commands.append(Publish(output))
        steps = txn.route(output)
        if steps:
            txn.deliver(output, steps)
        elif not published:
            txn.finish(
                RunStatus.FAILED,
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
    txn = _Txn(state)
    worker = txn.release(tick.worker_id)
    delivery = worker.delivery
    if tick.retry_delay is None:
        txn.finish(RunStatus.FAILED, Failed(worker.step, tick.error, delivery.attempt))
        return txn.done()
    timer_id = f"retry-{tick.worker_id}"
    retries = dict(state.retries)
    first_failed_at = tick.now if delivery.first_failed_at is None else delivery.first_failed_at
    retries[timer_id] = Worker(
        worker.step,
        Delivery(
            delivery.event_id, delivery.event, delivery.attempt + 1, tick.error, first_failed_at
        ),
    )
    txn.retries = retries
    txn.commands.append(ScheduleTimer(timer_id, tick.now + tick.retry_delay))
    txn.pump(worker.step)
    return txn.done()


def _on_timer_fired(state: RunState, tick: TimerFired) -> tuple[RunState, list[Command]]:
    _require_running(state, tick)
    txn = _Txn(state)
    if tick.timer_id == RUN_TIMEOUT_TIMER:
        deadline = state.deadline
        if deadline is None:
            return state, []
        if tick.now < deadline:
            txn.commands.append(ScheduleTimer(RUN_TIMEOUT_TIMER, deadline))
        else:
            assert state.spec.timeout is not None
            txn.finish(RunStatus.TIMED_OUT, TimedOut(state.spec.timeout, state.active_steps()))
        return txn.done()
    retry = state.retries.get(tick.timer_id)
    if retry is None:
        return state, []  # a timer cancelled after it fired: nothing to do
    retries = dict(state.retries)
    del retries[tick.timer_id]
    txn.retries = retries
    lane = txn.lanes[retry.step]
    txn.lanes[retry.step] = Lane(lane.queue.push_front(retry.delivery), lane.running)
    txn.pump(retry.step)
    return txn.done()


def _on_cancel_requested(state: RunState, tick: CancelRequested) -> tuple[RunState, list[Command]]:
    _require_running(state, tick)
    txn = _Txn(state)
    txn.finish(RunStatus.CANCELLED, Cancelled())
    return txn.done()


def _on_event_collected(state: RunState, tick: EventCollected) -> tuple[RunState, list[Command]]:
    _require_running(state, tick)
    worker = state.workers.get(tick.worker_id)
    if worker is None:
        raise TickRejected(f"no worker {tick.worker_id} is executing in this run")
    expected = tick.expected
    if not expected:
        return state, [ReturnCollected(tick.worker_id, ())]
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
    txn = _Txn(state)
    txn.collections = collections
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
    EventSent: _on_event_sent,
    StepCompleted: _on_step_completed,
    StepFailed: _on_step_failed,
    TimerFired: _on_timer_fired,
    CancelRequested: _on_cancel_requested,
    EventCollected: _on_event_collected,
}


def reduce(state: RunState, tick: Tick) -> tuple[RunState, list[Command]]:
    """Apply ``tick`` to ``state``; return the next state and the commands to run.

    :raises TickRejected: if the tick breaks the protocol; ``state`` is unchanged.
    """
    if state.status.finished:
        return state, []
    return _HANDLERS[type(tick)](state, tick)
